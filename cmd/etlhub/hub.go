package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/importer"
	"github.com/etlhub/etlhub/internal/config"
)

// serve runs `etlhub serve --config etlhub.yaml`.
func serve(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	path := fs.String("config", "etlhub.yaml", "the hub's config `file`")
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	cfg, err := app.Load(*path)
	if err != nil {
		if !wrongConfig(stderr, *path, "serve") {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	cfg.Version = buildVersion()
	log := app.NewLogger(cfg.Log, stderr)
	log.Info("etlhub starting", "version", buildVersion(), "config", *path)
	// SIGHUP reads the config again (it no longer ends the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloads := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reloads <- struct{}{}:
			default: // one is waiting already
			}
		}
	}()
	load := func() (*app.Config, error) {
		c, err := app.Load(*path)
		if err == nil {
			c.Version = buildVersion()
		}
		return c, err
	}
	if err := app.ServeWith(ctx, cfg, log, app.ServeOptions{Load: load, Reload: reloads}); err != nil {
		log.Error("etlhub stopped with an error", "error", err)
		return 1
	}
	return 0
}

// checkConfig runs `etlhub check-config [--allow-missing-env] FILE`.
func checkConfig(_ context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	allowEnv := fs.Bool("allow-missing-env", false, "accept unset ${NAME} variables (check in CI without the secrets)")
	pos, code, done := c.parse(fs, args, stdout, stderr)
	if done {
		return code
	}
	file := pos[0]
	var cfg app.Config
	notes, err := config.LoadWith(file, &cfg, config.Options{AllowMissingEnv: *allowEnv})
	if err != nil {
		if wrongConfig(stderr, file, "check-config") {
			return 1
		}
		fmt.Fprintln(stderr, err)
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", file, len(ce.Problems))
		}
		return 1
	}
	for _, n := range notes {
		fmt.Fprintf(stdout, "%s:%d: %s: %s (allowed by --allow-missing-env)\n", file, n.Line, n.Key, n.Msg)
	}
	fmt.Fprintf(stdout, "%s: OK (%d sources, %d jobs, %d tokens)\n", file, len(cfg.Sources), len(cfg.Jobs), len(cfg.Auth.Tokens))
	return 0
}

// wrongConfig says which command takes file when it is the other half's
// config (an importer config given to the hub, or the reverse).
func wrongConfig(w io.Writer, file, cmd string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	switch cmd {
	case "check-config", "serve":
		if config.BelongsTo(data, app.Config{}, importer.Config{}) {
			fmt.Fprintf(w, "%s: this is an importer config (keys like tenants, redis, mongo): check it with 'etlhub importer --config %s --check' and run it with 'etlhub importer --config %s'\n", file, file, file)
			return true
		}
	case "importer":
		if config.BelongsTo(data, importer.Config{}, app.Config{}) {
			fmt.Fprintf(w, "%s: this is a hub config (keys like auth, jobs, sources): check it with 'etlhub check-config %s' and run it with 'etlhub serve --config %s'\n", file, file, file)
			return true
		}
	}
	return false
}
