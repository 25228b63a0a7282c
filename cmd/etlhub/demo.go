package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/notifier/pagerduty"
	"github.com/etlhub/etlhub/notifier/slack"
	"github.com/etlhub/etlhub/sim"
)

// demo runs `etlhub demo`: a night on embedded defaults. Alerts print to
// the console, and go to PagerDuty (PAGERDUTY_ROUTING_KEY) and Slack
// (SLACK_TOKEN and SLACK_CHANNEL, or SLACK_WEBHOOK_URL) when those are set.
func demo(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "where the dashboard and API listen")
	step := fs.Duration("step", 250*time.Millisecond, "real time per simulated minute")
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o := sim.DemoOptions{Listen: *listen, Step: *step, Out: stdout}
	// Real receivers when their keys are in the environment (never flags:
	// they would sit in the shell's history).
	if k := os.Getenv("PAGERDUTY_ROUTING_KEY"); k != "" {
		o.PagerDuty = &pagerduty.Config{RoutingKey: config.Secret(k)}
	}
	if tok, ch := os.Getenv("SLACK_TOKEN"), os.Getenv("SLACK_CHANNEL"); tok != "" && ch != "" {
		o.Slack = &slack.Config{Token: config.Secret(tok), Channel: ch}
	} else if hook := os.Getenv("SLACK_WEBHOOK_URL"); hook != "" {
		o.Slack = &slack.Config{WebhookURL: config.Secret(hook)}
	}
	if err := sim.Demo(ctx, o, log); err != nil {
		fmt.Fprintln(stderr, "etlhub demo:", err)
		return 1
	}
	return 0
}
