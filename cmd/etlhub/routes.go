package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/notifier/routing"
)

// routesCmd runs `etlhub routes test [--config FILE] [--tree] [--at TIME]
// [--expect R,...] LABEL=VALUE...`: the receivers an alert with these labels
// reaches, one line, comma-separated, as `amtool config routes test` prints.
func routesCmd(_ context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	path := fs.String("config", "etlhub.yaml", "the hub's config `file`")
	tree := fs.Bool("tree", false, "also print the routing tree, the routes the alert ends at marked with *")
	at := fs.String("at", "", "check time intervals at this RFC 3339 `time` (default now)")
	expect := fs.String("expect", "", "exit 1 unless the receivers are exactly these (`R1,R2`)")
	pos, code, done := c.parse(fs, args, stdout, stderr)
	if done {
		return code
	}
	if pos[0] != "test" {
		return c.fail(stderr, "unknown routes command %q (routes test)", pos[0])
	}
	now := time.Now().UTC()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return c.fail(stderr, "--at %q is not an RFC 3339 time (2026-09-01T05:00:00Z)", *at)
		}
		now = t.UTC()
	}
	labels := map[string]string{}
	for _, a := range pos[1:] {
		m, err := routing.ParseMatcher(a)
		if err != nil || m.Type != routing.MatchEqual {
			return c.fail(stderr, "%q is not LABEL=VALUE", a)
		}
		labels[m.Name] = m.Value
	}
	var cfg app.Config
	if _, err := config.LoadWith(*path, &cfg, config.Options{AllowMissingEnv: true}); err != nil {
		if !wrongConfig(stderr, *path, "check-config") {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	rt := cfg.Notify.Router()
	hops := rt.Test(labels, now)
	names := make([]string, len(hops))
	for i, h := range hops {
		names[i] = h.Receiver
		if h.Muted {
			fmt.Fprintf(stderr, "note: %s (%s) is muted at %s by its time intervals: nothing is sent there now\n",
				h.Receiver, h.Route, now.Format(time.RFC3339))
		}
	}
	got := strings.Join(names, ",")
	fmt.Fprintln(stdout, got)
	if *tree {
		if rt.Tree == nil {
			fmt.Fprintln(stdout, "(notify.routes, the older flat form: no tree)")
		} else {
			fmt.Fprintln(stdout, "Routing tree:")
			var marked []*routing.Node
			for _, h := range hops {
				marked = append(marked, h.Node)
			}
			rt.Tree.Print(stdout, marked)
		}
	}
	if *expect != "" && *expect != got {
		fmt.Fprintf(stderr, "etlhub routes test: the receivers are %q, not the expected %q\n", got, *expect)
		return 1
	}
	return 0
}
