package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command describes a subcommand for its help and its argument checks.
type command struct {
	name     string
	synopsis string // what follows "etlhub NAME" in the usage line
	about    string // one paragraph
	minArgs  int    // positional arguments
	maxArgs  int
}

// parse parses a subcommand's flags, which may come before, between or after
// its positional arguments (a "--" ends the flags). -h and --help print the
// usage on stdout (exit 0); a bad flag or argument prints why and the usage
// line on stderr (exit 2). done says whether the caller should return code.
func (c command) parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var rest []string
	if i := indexOf(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.help(fs, stdout)
			return nil, 0, true
		}
		if err != nil {
			return nil, c.fail(stderr, "%v", err), true
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	pos = append(pos, rest...)
	switch {
	case len(pos) > c.maxArgs && c.maxArgs == 0:
		return nil, c.fail(stderr, "unexpected argument %q", pos[0]), true
	case len(pos) > c.maxArgs:
		return nil, c.fail(stderr, "unexpected argument %q", pos[c.maxArgs]), true
	case len(pos) < c.minArgs:
		return nil, c.fail(stderr, "missing argument"), true
	}
	return pos, 0, false
}

// fail reports a usage error: exit code 2.
func (c command) fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "etlhub %s: %s\nusage: etlhub %s %s\nrun 'etlhub %s --help' for more\n",
		c.name, fmt.Sprintf(format, args...), c.name, c.synopsis, c.name)
	return 2
}

// help is the usage on w: the synopsis, what it does, and its flags.
func (c command) help(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: etlhub %s %s\n\n%s\n", c.name, c.synopsis, c.about)
	var flags []string
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		s := "  --" + f.Name
		if name != "" {
			s += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		flags = append(flags, fmt.Sprintf("%-24s %s", s, usage))
	})
	if len(flags) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s\n", strings.Join(flags, "\n"))
	}
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}

// colourMode decides whether output to w is coloured: --color always or
// never wins; auto colours a terminal unless NO_COLOR is set (to anything)
// or TERM is dumb (https://no-color.org).
func colourMode(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
			return false, nil
		}
		return isTTY(w), nil
	}
	return false, fmt.Errorf("--color %q is not auto, always or never", mode)
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
