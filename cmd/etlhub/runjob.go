package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/etlhub/etlhub/jobrun"
	"github.com/etlhub/etlhub/model"
)

// runJob runs `etlhub run --job TENANT/JOB [flags] -- CMD ARGS`: the command,
// reported to the hub's ping API, its exit code passed through. It handles
// SIGINT and SIGTERM itself (they go to the command), so ctx is not used.
func runJob(_ context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	job := fs.String("job", "", "the `TENANT/JOB` the run is of, named in messages (the hub takes it from the key)")
	hub := fs.String("hub", envOr("ETLHUB_URL", "http://127.0.0.1:8080"), "the hub's `URL` (ETLHUB_URL)")
	key := fs.String("key", "", "the job's ping `KEY` (auth.ping_keys); better in ETLHUB_PING_KEY, which ps does not show")
	heartbeat := fs.Duration("heartbeat", time.Minute, "how often to report the command alive while it runs (0: never)")
	tailLines := fs.Int("tail-lines", 20, "the last `N` lines of output sent with the finish (and at most 4 KiB)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long each call to the hub may take (each is tried 3 times)")
	// The flags end at "--" or at the command's name; what follows is the command's.
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.help(fs, stdout)
		return 0
	}
	if err != nil {
		return c.fail(stderr, "%v", err)
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return c.fail(stderr, "missing the command to run (after --)")
	}
	tenant, name, _ := strings.Cut(*job, "/")
	cfg := jobrun.Config{
		Hub: *hub, Key: *key, Job: model.JobKey{Tenant: tenant, Job: name},
		Heartbeat: *heartbeat, TailLines: *tailLines, Timeout: *timeout, Version: buildVersion(),
		Stdin: os.Stdin, Stdout: stdout, Stderr: stderr,
	}
	if cfg.Key == "" {
		cfg.Key = os.Getenv("ETLHUB_PING_KEY")
	}
	if strings.Count(*job, "/") != 1 {
		cfg.Job = model.JobKey{}
	}
	if err := cfg.Validate(); err != nil {
		return c.fail(stderr, "%v", err)
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sig)
	cfg.Signals = sig
	return jobrun.Run(cfg, argv)
}
