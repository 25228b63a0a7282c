package oneroster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// csvReader reads RFC 4180 records as OneRoster writes them, streaming and
// with bounded memory: a field keeps at most maxField bytes (the rest is
// counted, not stored), a record keeps at most maxFields fields and
// maxRecord bytes. Unlike encoding/csv it keeps carriage returns inside
// fields (OneRoster forbids them, so they are reported), strips a UTF-8 BOM
// only at the very start of the stream, and numbers lines physically.
type csvReader struct {
	r         *bufio.Reader
	maxField  int
	maxRecord int
	maxFields int

	line int  // the physical line being read (1-based)
	BOM  bool // the stream started with a UTF-8 BOM (stripped)
	// UTF16 is set when the stream starts with a UTF-16 BOM.
	UTF16 bool

	buf    []byte
	ends   []int
	fields []string
	// Per record: where it starts, how many fields it really had, and the
	// fields that were cut or held a CR.
	Line     int
	NFields  int
	Oversize []int // field indexes (< len(fields)) cut at the limit
	Sizes    []int // their real sizes
	CR       []int // field indexes holding a carriage return
	started  bool
	flen     int  // bytes of the current field, stored or not
	cut      bool // the current field is longer than what is stored
	err      error
}

const (
	defaultMaxField = 64 << 10
	maxFieldsKept   = 1024
)

func newCSVReader(r io.Reader, maxField int) *csvReader {
	if maxField <= 0 {
		maxField = defaultMaxField
	}
	size := 64 << 10
	if st, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Size() < int64(size) {
			size = max(int(fi.Size())+16, 512) // a small file gets a small buffer
		}
	}
	return &csvReader{r: bufio.NewReaderSize(r, size), maxField: maxField, maxRecord: max(16*maxField, 1<<20),
		maxFields: maxFieldsKept, line: 1}
}

// syntaxError is a record that is not RFC 4180.
type syntaxError struct {
	Line int
	Msg  string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

const (
	stStart  = iota // at the start of a field
	stBare          // in an unquoted field
	stQuoted        // in a quoted field
	stQuote         // a quote inside a quoted field: the end, or the first of two
	stCR            // a CR after a field: CRLF ends the record
)

// Read returns the next record (nil, io.EOF at the end). Blank lines are
// skipped. After a *syntaxError the reader is done.
func (c *csvReader) Read() ([]string, error) {
	if c.err != nil {
		return nil, c.err
	}
	if !c.started {
		c.started = true
		if b, _ := c.r.Peek(3); bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
			c.r.Discard(3)
			c.BOM = true
		} else if bytes.HasPrefix(b, []byte("\xff\xfe")) || bytes.HasPrefix(b, []byte("\xfe\xff")) {
			c.UTF16 = true
		}
	}
	for {
		rec, err := c.record()
		if err != nil {
			c.err = err
			return nil, err
		}
		if rec != nil {
			return rec, nil
		}
	}
}

// record reads one record; it returns nil, nil for a blank line.
func (c *csvReader) record() ([]string, error) {
	c.buf, c.ends = c.buf[:0], c.ends[:0]
	c.Oversize, c.Sizes, c.CR = c.Oversize[:0], c.Sizes[:0], c.CR[:0]
	c.Line, c.NFields, c.flen, c.cut = c.line, 0, 0, false
	state := stStart
	any := false
	for {
		chunk, rerr := c.r.ReadSlice('\n')
		if len(chunk) == 0 && rerr == io.EOF {
			switch state {
			case stQuoted:
				return nil, &syntaxError{c.line, "a quoted field is not closed before the end of the file"}
			case stStart, stCR:
				if !any && c.NFields == 0 {
					return nil, io.EOF
				}
			}
			c.endField()
			return c.finish(), nil
		}
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, bufio.ErrBufferFull) {
			return nil, rerr
		}
		for i := 0; i < len(chunk); i++ {
			b := chunk[i]
			switch state {
			case stStart:
				switch b {
				case '"':
					state, any = stQuoted, true
				case ',':
					any = true
					c.endField()
				case '\n':
					c.line++
					if !any {
						c.Line = c.line
						continue // a blank line
					}
					c.endField()
					return c.finish(), nil
				case '\r':
					state = stCR
				default:
					state, any = stBare, true
					i = c.span(chunk, i, &bareStop) - 1
				}
			case stBare:
				switch b {
				case ',':
					c.endField()
					state = stStart
				case '\n':
					c.line++
					c.endField()
					return c.finish(), nil
				case '\r':
					state = stCR
				case '"':
					return nil, &syntaxError{c.line, `a quote (") inside a field that does not start with one; quote the field and double the quote`}
				default:
					i = c.span(chunk, i, &bareStop) - 1
				}
			case stQuoted:
				switch b {
				case '"':
					state = stQuote
				case '\n':
					c.line++
					c.add(b)
				case '\r':
					c.markCR()
					c.add(b)
				default:
					i = c.span(chunk, i, &quotedStop) - 1
				}
			case stQuote:
				switch b {
				case '"':
					c.add(b)
					state = stQuoted
				case ',':
					c.endField()
					state = stStart
				case '\n':
					c.line++
					c.endField()
					return c.finish(), nil
				case '\r':
					state = stCR
				default:
					return nil, &syntaxError{c.line, fmt.Sprintf("text (%q) after the closing quote of a field", rune(b))}
				}
			case stCR:
				if b == '\n' {
					c.line++
					if !any && c.NFields == 0 {
						state = stStart
						c.Line = c.line
						continue // a blank CRLF line
					}
					c.endField()
					return c.finish(), nil
				}
				// A CR that does not end the line is part of the field.
				any = true
				c.markCR()
				c.add('\r')
				state = stBare
				i-- // read b again, in the field
			}
		}
	}
}

var bareStop, quotedStop [256]bool

func init() {
	for _, b := range []byte{',', '\n', '\r', '"'} {
		bareStop[b] = true
	}
	for _, b := range []byte{'\n', '\r', '"'} {
		quotedStop[b] = true
	}
}

// span adds chunk[i:] up to the next stop byte to the field and returns the
// index of that byte (or len(chunk)).
func (c *csvReader) span(chunk []byte, i int, stop *[256]bool) int {
	j := i
	for j < len(chunk) && !stop[chunk[j]] {
		j++
	}
	n := j - i
	keep := n
	if room := c.maxField - c.flen; keep > room {
		keep = max(room, 0)
	}
	if room := c.maxRecord - len(c.buf); keep > room {
		keep = max(room, 0)
	}
	if c.NFields >= c.maxFields {
		keep = 0
	}
	if keep < n && c.NFields < c.maxFields {
		c.cut = true
	}
	c.buf = append(c.buf, chunk[i:i+keep]...)
	c.flen += n
	return j
}

func (c *csvReader) add(b byte) {
	c.flen++
	if c.NFields >= c.maxFields {
		return
	}
	if c.flen <= c.maxField && len(c.buf) < c.maxRecord {
		c.buf = append(c.buf, b)
	} else {
		c.cut = true
	}
}

func (c *csvReader) markCR() {
	if c.NFields < c.maxFields && (len(c.CR) == 0 || c.CR[len(c.CR)-1] != c.NFields) {
		c.CR = append(c.CR, c.NFields)
	}
}

func (c *csvReader) endField() {
	c.NFields++
	if c.NFields <= c.maxFields {
		c.ends = append(c.ends, len(c.buf))
		if c.cut {
			c.Oversize = append(c.Oversize, c.NFields-1)
			c.Sizes = append(c.Sizes, c.flen)
		}
	}
	c.flen, c.cut = 0, false
}

func (c *csvReader) finish() []string {
	s := string(c.buf)
	c.fields = c.fields[:0]
	start := 0
	for _, e := range c.ends {
		c.fields = append(c.fields, s[start:e])
		start = e
	}
	return c.fields
}
