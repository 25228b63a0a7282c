package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/etlhub/etlhub/internal/hub"
)

// demo runs `etlhub demo`: a simulated night on embedded defaults.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "where the dashboard and API listen")
	step := fs.Duration("step", 250*time.Millisecond, "real time per simulated minute")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := hub.Demo(ctx, hub.DemoOptions{Listen: *listen, Step: *step, Out: stdout}, log); err != nil {
		fmt.Fprintln(stderr, "etlhub demo:", err)
		return 1
	}
	return 0
}
