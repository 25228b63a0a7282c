// Command etlhub is the hub and (later) the importer in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/hub"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `etlhub: nightly import monitoring for school districts

Usage:
  etlhub demo [--listen ADDR] [--step 250ms]
                                        a simulated night of six districts, with the dashboard
  etlhub serve --config etlhub.yaml     run the hub (collectors, rules, API)
  etlhub check-config etlhub.yaml       validate a config; non-zero exit on problems
  etlhub replay --scenario S --observations O --out A
                                        replay observations through the rules on a
                                        simulated clock; write alert transitions
  etlhub status [--tenant T] [--url URL]
                                        the board as a table (ETLHUB_URL, ETLHUB_TOKEN)
  etlhub importer --config importer.yaml [--check]
                                        run the importer (SFTP -> OneRoster -> MongoDB)
  etlhub gen-roster --students N --out DIR [--inject-errors]
                                        write a OneRoster 1.1 bulk set
  etlhub validate-roster [--json] [--csv FILE] DIR|ZIP
                                        validate an upload; non-zero exit when rejected
  etlhub version                        print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "replay":
		return replay(ctx, args[1:], stdout, stderr)
	case "status":
		return status(ctx, args[1:], stdout, stderr)
	case "importer":
		return runImporter(ctx, args[1:], stderr)
	case "gen-roster":
		return genRoster(args[1:], stdout, stderr)
	case "validate-roster":
		return validateRoster(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "etlhub", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "etlhub: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "etlhub.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := hub.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg.Version = buildVersion()
	log := hub.NewLogger(cfg.Log, stderr)
	log.Info("etlhub starting", "version", buildVersion(), "config", *path)
	if err := hub.Serve(ctx, cfg, log, nil); err != nil {
		log.Error("etlhub stopped with an error", "error", err)
		return 1
	}
	return 0
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: etlhub check-config FILE")
		return 2
	}
	cfg, err := hub.Load(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", args[0], len(ce.Problems))
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d sources, %d jobs, %d tokens)\n", args[0], len(cfg.Sources), len(cfg.Jobs), len(cfg.Auth.Tokens))
	return 0
}
