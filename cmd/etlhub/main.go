// Command etlhub is the hub and the importer in one binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	promversion "github.com/prometheus/common/version"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123" ./cmd/etlhub
var (
	version = "dev"
	commit  = ""
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// commands is every subcommand in the order the usage lists them.
var commands = []struct {
	command
	run func(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int
}{
	{command{"demo", "[--listen ADDR] [--step 250ms]", "A simulated night of ten districts on an accelerated clock, with the dashboard.", 0, 0}, demo},
	{command{"serve", "[--config etlhub.yaml]", "Run the hub: collectors, rules, notifications and the API.", 0, 0}, serve},
	{command{"check-config", "[--allow-missing-env] FILE", "Validate a hub config: every problem with its line and key; exit 1 on any.", 1, 1}, checkConfig},
	{command{"routes", "test [--config etlhub.yaml] [--tree] [--at TIME] [--expect R1,R2] LABEL=VALUE...", "Print the receivers an alert with these labels reaches (like amtool config routes test).", 1, 1 << 16}, routesCmd},
	{command{"replay", "--scenario S --observations O --out A", "Replay observations through the rules on a simulated clock and write the alert transitions.", 0, 0}, replay},
	{command{"status", "[--tenant T] [--url URL] [--json] [--color auto|always|never]", "The board as a table, worst first, then the dependencies the hub probes (ETLHUB_URL, ETLHUB_TOKEN; NO_COLOR and TERM=dumb turn colour off).", 0, 0}, status},
	{command{"run", "--job TENANT/JOB [--hub URL] [--key KEY] [--heartbeat 1m] [--tail-lines 20] -- CMD ARGS...", "Run a command and report it to the hub's ping API (start, heartbeats, exit code, duration, output's tail); exit with its exit code (ETLHUB_PING_KEY, ETLHUB_URL).", 1, 1 << 16}, runJob},
	{command{"importer", "[--config importer.yaml] [--group NAME] [--check]", "Run the importer (SFTP -> OneRoster -> MongoDB), or check its config.", 0, 0}, runImporter},
	{command{"gen-roster", "--students N --out DIR [--version 1.1|1.2] [--inject-errors]", "Write a OneRoster 1.1 or 1.2 bulk set.", 0, 0}, genRoster},
	{command{"validate-roster", "[--json] [--csv FILE] [--bulk-lifecycle error|warning] [--max-field-bytes N] DIR|ZIP", "Validate an upload; exit 1 when the policy rejects it.", 1, 1}, validateRoster},
	{command{"healthcheck", "[--url http://127.0.0.1:8080/healthz]", "Exit 0 when the URL answers 200 (the container image's HEALTHCHECK).", 0, 0}, healthcheck},
	{command{"version", "", "Print the version.", 0, 0}, printVersion},
}

func usage() string {
	var b strings.Builder
	b.WriteString("etlhub: nightly import monitoring for school districts\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  etlhub %s %s\n        %s\n", c.name, c.synopsis, c.about)
	}
	b.WriteString("\nRun 'etlhub COMMAND --help' for a command's flags.\n")
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	promversion.Version = buildVersion()
	promversion.Revision = commit
	switch args[0] {
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage())
		return 0
	case "--version", "-v":
		args = []string{"version"}
	}
	for _, c := range commands {
		if c.name == args[0] {
			if c.name == "run" {
				// run forwards SIGINT and SIGTERM to its command and exits when it does.
				return c.run(context.Background(), c.command, args[1:], stdout, stderr)
			}
			ctx, stop := signalContext(stderr)
			defer stop()
			return c.run(ctx, c.command, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "etlhub: unknown command %q\n\n%s", args[0], usage())
	return 2
}

// signalContext is cancelled by the first SIGINT or SIGTERM, so the command
// shuts down gracefully; a second one exits at once.
func signalContext(stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "etlhub: second %v: exiting now\n", s)
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(ch); close(done); cancel() }
}

func printVersion(_ context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stdout, "etlhub", buildVersion())
	return 0
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
