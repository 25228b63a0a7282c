package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/etlhub/etlhub/importer/oneroster"
)

// genRoster writes a OneRoster 1.1 or 1.2 bulk set.
func genRoster(_ context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet(c.name, flag.ContinueOnError)
	students := fset.Int("students", 1000, "number of students (350000 is Miami-Dade-sized)")
	out := fset.String("out", "", "directory to write into")
	seed := fset.Uint64("seed", 1, "random seed")
	inject := fset.Bool("inject-errors", false, "add rows with real-world mistakes")
	version := fset.String("version", "1.1", "OneRoster version to write: 1.1 or 1.2")
	if _, code, done := c.parse(fset, args, stdout, stderr); done {
		return code
	}
	if *out == "" {
		return c.fail(stderr, "--out is required")
	}
	if *version != "1.1" && *version != "1.2" {
		return c.fail(stderr, "--version %q: want 1.1 or 1.2", *version)
	}
	start := time.Now()
	counts, err := oneroster.Generate(*out, oneroster.GenOptions{Students: *students, Seed: *seed, InjectErrors: *inject, Version: *version})
	if err != nil {
		fmt.Fprintln(stderr, "etlhub gen-roster:", err)
		return 1
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, counts[n]))
	}
	fmt.Fprintf(stdout, "wrote OneRoster %s to %s in %.1fs: %s\n", *version, *out, time.Since(start).Seconds(), strings.Join(parts, ", "))
	return 0
}

// validateRoster validates an upload directory or zip and prints the report.
func validateRoster(_ context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet(c.name, flag.ContinueOnError)
	asJSON := fset.Bool("json", false, "print the report as JSON")
	csvOut := fset.String("csv", "", "also write the report as CSV to this file")
	bulkLifecycle := fset.String("bulk-lifecycle", "error", "severity of bulk rows that fill status/dateLastModified: error (the specification) or warning (the importer's default policy)")
	maxField := fset.Int("max-field-bytes", 0, "largest field kept; larger is row.field_too_large (0: 64 KiB)")
	pos, code, done := c.parse(fset, args, stdout, stderr)
	if done {
		return code
	}
	policy := oneroster.DefaultPolicy
	policy.BulkLifecycle, policy.MaxFieldBytes = oneroster.Severity(*bulkLifecycle), *maxField
	if err := policy.Check(); err != nil {
		return c.fail(stderr, "%v", err)
	}
	path := pos[0]
	var fsys fs.FS
	if strings.HasSuffix(strings.ToLower(path), ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			fmt.Fprintf(stderr, "etlhub validate-roster: %s: not a complete zip: %v\n", path, err)
			return 1
		}
		defer zr.Close()
		fsys = zr
	} else {
		fsys = os.DirFS(path)
	}
	start := time.Now()
	rep := oneroster.NewReport(5)
	res, err := oneroster.ValidateWith(fsys, policy.Options(), rep.Add)
	if err != nil {
		fmt.Fprintln(stderr, "etlhub validate-roster:", err)
		return 1
	}
	rep.Finish(res)
	dec := policy.Decide(rep, nil)
	if *csvOut != "" {
		f, err := os.Create(*csvOut)
		if err == nil {
			err = rep.WriteCSV(f)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(stderr, "etlhub validate-roster:", err)
			return 1
		}
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(map[string]any{"report": rep, "decision": dec})
	} else {
		rows := 0
		for _, st := range rep.Files {
			rows += st.Rows
		}
		fmt.Fprintf(stdout, "%s: OneRoster %s, %d rows in %d files, %d errors, %d warnings (%.1fs)\n",
			path, rep.Version, rows, len(rep.Files), rep.Errors, rep.Warnings, time.Since(start).Seconds())
		for _, g := range rep.Groups {
			e := g.Examples[0]
			fmt.Fprintf(stdout, "  %-7s %-36s %-18s %6d×  first at line %d %s: %s\n", g.Severity, g.Code, printable(g.File), g.Count, e.Line,
				printable(e.Column), printable(e.Message))
			fmt.Fprintf(stdout, "          fix: %s\n", g.Fix)
		}
		if dec.Load {
			fmt.Fprintln(stdout, "decision: load")
		} else {
			fmt.Fprintln(stdout, "decision: reject:", printable(strings.Join(dec.Reasons, "; ")))
		}
	}
	if !dec.Load {
		return 1
	}
	return 0
}

// printable replaces control characters (terminal escapes included) in text
// that came from an upload.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return '\uFFFD'
		}
		return r
	}, s)
}
