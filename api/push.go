package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/etlhub/etlhub/model"
	"github.com/gin-gonic/gin"
)

// ItemError is why one pushed item was rejected; Index counts from 0 in the
// body's order, Line is the line of a JSON-lines body.
type ItemError struct {
	Index int    `json:"index"`
	Line  int    `json:"line,omitempty"`
	Error string `json:"error"`
}

// PushResult answers POST /api/v1/observations.
type PushResult struct {
	Received   int         `json:"received"`
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   int         `json:"rejected"`
	Errors     []ItemError `json:"errors"`
}

// maxItemErrors bounds the errors listed in one answer.
const maxItemErrors = 100

// DefaultMaxItems caps the observations of one push.
const DefaultMaxItems = 10000

// push takes one observation, a JSON array, or JSON lines; validates each;
// stores the good ones in one transaction and answers with per-item errors.
// The body is decoded as a stream, one item at a time: memory grows with the
// items accepted (at most MaxItems), not with the body.
func (s *server) push(c *gin.Context) {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, s.o.MaxBodyBytes)
	p := who(c)
	now := s.o.Now().UTC()
	res := PushResult{Errors: []ItemError{}}
	if msg, down := s.storeDown(); down {
		// Nothing can be stored: the pusher keeps its observations and
		// sends them again after Retry-After.
		c.Header("Retry-After", strconv.Itoa(RetryAfterStoreError))
		abort(c, 503, "store_error", msg+"; retry")
		return
	}
	if err := s.jobs.refresh(c.Request.Context(), s.o.Store, now); err != nil {
		s.storeError(c, err)
		return
	}
	var good []model.Observation
	reject := func(it item, msg string) {
		res.Rejected++
		if len(res.Errors) < maxItemErrors {
			res.Errors = append(res.Errors, ItemError{Index: it.index, Line: it.line, Error: msg})
		}
	}
	err := eachItem(body, s.o.MaxItems, func(it item) {
		res.Received++
		if it.fail != "" {
			reject(it, it.fail)
			return
		}
		o, err := model.Decode(it.raw, model.DecodeOptions{Strict: true, DefaultSource: "push:" + p.name})
		if err != nil {
			reject(it, err.Error())
			return
		}
		if !p.CanSee(o.Tenant) {
			reject(it, fmt.Sprintf("tenant %q is outside this token's scope", o.Tenant))
			return
		}
		if err := o.CheckClock(now); err != nil {
			reject(it, err.Error())
			return
		}
		if why := s.jobs.admit(model.JobKey{Tenant: o.Tenant, Job: o.Job}); why != "" {
			reject(it, why)
			return
		}
		good = append(good, o)
	})
	var mbe *http.MaxBytesError
	var bad *bodyError
	switch {
	case errors.As(err, &mbe):
		abort(c, 413, "body_too_large", fmt.Sprintf("the body exceeds %d bytes; send smaller batches", s.o.MaxBodyBytes))
		return
	case errors.Is(err, errTooManyItems):
		abort(c, 413, "too_many_items", fmt.Sprintf("the body holds more than %d observations (ingest.max_items); send smaller batches", s.o.MaxItems))
		return
	case errors.As(err, &bad):
		abort(c, 400, "invalid_json", bad.msg)
		return
	case err != nil:
		abort(c, 400, "bad_request", "could not read the body")
		return
	}
	if res.Received == 0 {
		abort(c, 400, "empty", "the body holds no observations")
		return
	}
	if s.metrics != nil {
		s.metrics.pushRejected.Add(float64(res.Rejected))
	}
	if len(good) > 0 {
		ir, err := s.o.Ingest.Ingest(c.Request.Context(), "push", good)
		if err != nil {
			s.storeError(c, err)
			return
		}
		res.Accepted, res.Duplicates = ir.Inserted, ir.Duplicates
	}
	code := 200
	if len(good) == 0 {
		code = 422
	}
	c.JSON(code, res)
}

// item is one item of a body; raw is valid only during the call it is
// passed to; fail says why it cannot be decoded at all.
type item struct {
	index int
	line  int
	raw   []byte
	fail  string
}

var errTooManyItems = errors.New("too many items")

// bodyError is a body that is none of the three shapes.
type bodyError struct{ msg string }

func (e *bodyError) Error() string { return e.msg }

const (
	// smallBody: a '{' body up to this size is read whole, so that one
	// pretty-printed object is told from JSON lines; larger ones are JSON
	// lines (one observation, pretty-printed, is far smaller).
	smallBody = 64 << 10
	// maxLine bounds one line of a JSON-lines body.
	maxLine = 1 << 20
)

// eachItem calls fn with every item of a body, as it is read: one JSON
// object, a JSON array of objects, or JSON lines. It stops with
// errTooManyItems past max items, a *bodyError for a body of no shape, or
// the reader's error (*http.MaxBytesError past the size limit).
func eachItem(r io.Reader, max int, fn func(item)) error {
	if max <= 0 {
		max = DefaultMaxItems
	}
	br := bufio.NewReaderSize(r, 64<<10)
	// Skip leading white space, counting its lines.
	line := 1
	var first byte
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b == '\n' {
			line++
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			first = b
			br.UnreadByte()
			break
		}
	}
	switch first {
	case '[':
		return eachInArray(br, max, fn)
	case '{':
		head, err := io.ReadAll(io.LimitReader(br, smallBody+1))
		if err != nil {
			return err
		}
		if len(head) <= smallBody {
			if trim := bytes.TrimSpace(head); json.Valid(trim) {
				fn(item{index: 0, raw: trim})
				return nil
			}
			return eachLine(bytes.NewReader(head), line, max, fn)
		}
		return eachLine(io.MultiReader(bytes.NewReader(head), br), line, max, fn)
	}
	return &bodyError{"the body must be a JSON object, a JSON array of objects, or JSON lines"}
}

// eachInArray splits a JSON array into its elements with a small scanner
// (strings and nesting tracked, nothing decoded), so that each element is
// judged on its own and costs only its own bytes; r starts at the '['.
func eachInArray(r *bufio.Reader, max int, fn func(item)) error {
	if b, _ := r.ReadByte(); b != '[' {
		return &bodyError{"the body is not a valid JSON array"}
	}
	n, depth := 0, 0
	inStr, esc, long := false, false, false
	var buf []byte
	emit := func() error {
		trim := bytes.TrimSpace(buf)
		if len(trim) == 0 && !long {
			return &bodyError{fmt.Sprintf("the body is not a valid JSON array: item %d is empty", n)}
		}
		if n == max {
			return errTooManyItems
		}
		it := item{index: n, raw: trim}
		if long {
			it = item{index: n, fail: fmt.Sprintf("the item is longer than %d bytes", maxLine)}
		}
		fn(it)
		n++
		buf, long = buf[:0], false
		return nil
	}
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			return &bodyError{"the body is not a valid JSON array: it ends before the array does"}
		}
		if err != nil {
			return err
		}
		switch {
		case inStr:
			if esc {
				esc = false
			} else if b == '\\' {
				esc = true
			} else if b == '"' {
				inStr = false
			}
		case b == '"':
			inStr = true
		case b == '{' || b == '[':
			depth++
		case (b == '}' || b == ']') && depth > 0:
			depth--
		case b == ']':
			if n > 0 || len(bytes.TrimSpace(buf)) > 0 || long {
				if err := emit(); err != nil {
					return err
				}
			}
			return onlySpaceLeft(r)
		case b == '}':
			return &bodyError{fmt.Sprintf("the body is not a valid JSON array: unbalanced '}' in item %d", n)}
		case b == ',' && depth == 0:
			if err := emit(); err != nil {
				return err
			}
			continue
		}
		if len(buf) >= maxLine {
			long, buf = true, buf[:0]
		}
		if !long {
			buf = append(buf, b)
		}
	}
}

func onlySpaceLeft(r *bufio.Reader) error {
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return &bodyError{"the body is not a valid JSON array: data after the array"}
		}
	}
}

// eachLine calls fn with every non-empty line; line is the number of the
// first line r holds.
func eachLine(r io.Reader, line, max int, fn func(item)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	var buf []byte
	for ; ; line++ {
		buf = buf[:0]
		long := false
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			if !long {
				if len(buf)+len(chunk) > maxLine {
					long, buf = true, buf[:0]
				} else {
					buf = append(buf, chunk...)
				}
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		if trim := bytes.TrimSpace(buf); len(trim) > 0 || long {
			if n == max {
				return errTooManyItems
			}
			if long {
				fn(item{index: n, line: line, fail: fmt.Sprintf("the line is longer than %d bytes", maxLine)})
			} else {
				fn(item{index: n, line: line, raw: trim})
			}
			n++
		}
		if err == io.EOF {
			return nil
		}
	}
}
