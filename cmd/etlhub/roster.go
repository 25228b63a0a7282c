package main

import (
	"archive/zip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/importer/oneroster"
)

// genRoster writes a OneRoster 1.1 or 1.2 bulk set.
func genRoster(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("gen-roster", flag.ContinueOnError)
	fset.SetOutput(stderr)
	students := fset.Int("students", 1000, "number of students (350000 is Miami-Dade-sized)")
	out := fset.String("out", "", "directory to write into")
	seed := fset.Uint64("seed", 1, "random seed")
	inject := fset.Bool("inject-errors", false, "add rows with real-world mistakes")
	version := fset.String("version", "1.1", "OneRoster version to write: 1.1 or 1.2")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "usage: etlhub gen-roster --students N --out DIR [--version 1.1|1.2] [--inject-errors]")
		return 2
	}
	if *version != "1.1" && *version != "1.2" {
		fmt.Fprintf(stderr, "etlhub gen-roster: --version %q: want 1.1 or 1.2\n", *version)
		return 2
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
func validateRoster(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("validate-roster", flag.ContinueOnError)
	fset.SetOutput(stderr)
	asJSON := fset.Bool("json", false, "print the report as JSON")
	csvOut := fset.String("csv", "", "also write the report as CSV to this file")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: etlhub validate-roster [--json] [--csv FILE] DIR|ZIP")
		return 2
	}
	path := fset.Arg(0)
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
	res, err := oneroster.Validate(fsys, rep.Add)
	if err != nil {
		fmt.Fprintln(stderr, "etlhub validate-roster:", err)
		return 1
	}
	rep.Finish(res)
	dec := oneroster.DefaultPolicy.Decide(rep, nil)
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
			fmt.Fprintf(stdout, "  %-7s %-36s %-18s %6d×  first at line %d %s: %s\n", g.Severity, g.Code, g.File, g.Count, e.Line, e.Column, e.Message)
		}
		if dec.Load {
			fmt.Fprintln(stdout, "decision: load")
		} else {
			fmt.Fprintln(stdout, "decision: reject:", strings.Join(dec.Reasons, "; "))
		}
	}
	if !dec.Load {
		return 1
	}
	return 0
}
