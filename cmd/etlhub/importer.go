package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/etlhub/etlhub/importer"
	"github.com/etlhub/etlhub/importer/logship"
	"github.com/etlhub/etlhub/internal/config"
)

// runImporter runs `etlhub importer --config importer.yaml [--check]`.
func runImporter(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	path := fs.String("config", "importer.yaml", "the importer's config `file`")
	check := fs.Bool("check", false, "check the config (and that key files exist and are private) and exit")
	allowEnv := fs.Bool("allow-missing-env", false, "with --check: accept unset ${NAME} variables (CI without the secrets)")
	group := fs.String("group", importer.SharedGroup, "the isolation `group` this process serves")
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	var cfg importer.Config
	notes, err := config.LoadWith(*path, &cfg, config.Options{AllowMissingEnv: *check && *allowEnv})
	if err != nil {
		if wrongConfig(stderr, *path, "importer") {
			return 1
		}
		fmt.Fprintln(stderr, err)
		var ce *config.Error
		if *check && errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", *path, len(ce.Problems))
		}
		return 1
	}
	if *check {
		for _, n := range notes {
			fmt.Fprintf(stdout, "%s:%d: %s: %s (allowed by --allow-missing-env)\n", *path, n.Line, n.Key, n.Msg)
		}
		fmt.Fprintf(stdout, "%s: OK (%d tenants)\n", *path, len(cfg.Tenants))
		return 0
	}
	cfg.Tenants = cfg.InGroup(*group)
	cfg.Version = buildVersion()
	if len(cfg.Tenants) == 0 {
		fmt.Fprintf(stderr, "%s: no tenant is in group %q\n", *path, *group)
		return 1
	}
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.Log.Level))
	out := stderr
	if cfg.Log.Sumo != nil {
		ship := logship.New(*cfg.Log.Sumo)
		defer ship.Close()
		out = io.MultiWriter(stderr, ship)
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: lvl}))
	im, err := importer.New(ctx, &cfg, log)
	if err != nil {
		log.Error("importer not started", "error", err)
		return 1
	}
	log.Info("importer starting", "tenants", len(cfg.Tenants), "listen", cfg.Listen)
	if err := im.Run(ctx, nil); err != nil {
		log.Error("importer stopped with an error", "error", err)
		return 1
	}
	return 0
}
