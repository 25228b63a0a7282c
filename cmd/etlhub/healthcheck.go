package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheck runs `etlhub healthcheck [--url URL]`: exit 0 when the URL
// answers 200, for container HEALTHCHECKs (the image has no curl).
func healthcheck(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	u := fs.String("url", "http://127.0.0.1:8080/healthz", "the `URL` to ask")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", *u, nil)
	if err != nil {
		return c.fail(stderr, "--url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "etlhub healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "etlhub healthcheck: %s answered %s\n", *u, resp.Status)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", *u, resp.Status)
	return 0
}
