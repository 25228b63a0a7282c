package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/etlhub/etlhub/internal/status"
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

// push takes one observation, a JSON array, or JSON lines; validates each;
// stores the good ones in one transaction and answers with per-item errors.
func (s *server) push(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.o.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			abort(c, 413, "body_too_large", fmt.Sprintf("the body exceeds %d bytes; send smaller batches", s.o.MaxBodyBytes))
			return
		}
		abort(c, 400, "bad_request", "could not read the body")
		return
	}
	items, err := splitItems(body)
	if err != nil {
		abort(c, 400, "invalid_json", err.Error())
		return
	}
	if len(items) == 0 {
		abort(c, 400, "empty", "the body holds no observations")
		return
	}
	p := who(c)
	now := s.o.Now().UTC()
	res := PushResult{Received: len(items), Errors: []ItemError{}}
	good := make([]status.Observation, 0, len(items))
	reject := func(it item, msg string) {
		res.Rejected++
		if len(res.Errors) < maxItemErrors {
			res.Errors = append(res.Errors, ItemError{Index: it.index, Line: it.line, Error: msg})
		}
	}
	for _, it := range items {
		o, err := status.Decode(it.raw, status.DecodeOptions{Strict: true, DefaultSource: "push:" + p.name})
		if err != nil {
			reject(it, err.Error())
			continue
		}
		if !p.CanSee(o.Tenant) {
			reject(it, fmt.Sprintf("tenant %q is outside this token's scope", o.Tenant))
			continue
		}
		if err := o.CheckClock(now); err != nil {
			reject(it, err.Error())
			continue
		}
		good = append(good, o)
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

type item struct {
	index int
	line  int
	raw   []byte
}

// splitItems recognises the three body shapes.
func splitItems(body []byte) ([]item, error) {
	trim := bytes.TrimSpace(body)
	if len(trim) == 0 {
		return nil, nil
	}
	switch trim[0] {
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(trim, &raws); err != nil {
			return nil, fmt.Errorf("the body is not a valid JSON array: %v", err)
		}
		out := make([]item, len(raws))
		for i, r := range raws {
			out[i] = item{index: i, raw: r}
		}
		return out, nil
	case '{':
		if json.Valid(trim) {
			return []item{{index: 0, raw: trim}}, nil
		}
		var out []item
		for i, line := range bytes.Split(body, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			out = append(out, item{index: len(out), line: i + 1, raw: line})
		}
		return out, nil
	}
	return nil, errors.New("the body must be a JSON object, a JSON array of objects, or JSON lines")
}
