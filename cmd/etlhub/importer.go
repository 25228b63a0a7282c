package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/etlhub/etlhub/importer"
	"github.com/etlhub/etlhub/importer/logship"
	"github.com/etlhub/etlhub/internal/config"
)

// runImporter runs `etlhub importer --config importer.yaml`.
func runImporter(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("importer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "importer.yaml", "config file")
	check := fs.Bool("check", false, "validate the config and exit")
	group := fs.String("group", importer.SharedGroup, "the isolation group this process serves")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg importer.Config
	if err := config.Load(*path, &cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintf(stderr, "%s: OK (%d tenants)\n", *path, len(cfg.Tenants))
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
