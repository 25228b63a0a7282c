// Package upload decides when a district's upload in an inbox is complete:
// its manifest.csv is present, every file the manifest lists as bulk or
// delta is there, and sizes and modification times have not changed for a
// quiet period (or a marker file such as _DONE says it is done); a .zip
// bundle is complete when its central directory reads. Temporary names
// (.filepart, .tmp, .part, dot-files) are ignored. It is pure: a listing
// and now in, a decision out, so it works the same over SFTP and on disk.
package upload

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Entry is one file of an inbox listing.
type Entry struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Options tune detection.
type Options struct {
	// Quiet is how long sizes and mtimes must stay unchanged (default 2m).
	Quiet time.Duration
	// Marker, when set, ends the wait at once when a file of that name exists.
	Marker string
}

// Watch is what is remembered of an inbox between listings.
type Watch struct {
	FirstFileAt time.Time        // when the first file of this upload appeared
	StableSince time.Time        // since when the listing has not changed
	last        map[string]Entry // the previous listing
}

// Inputs are what the caller read besides the listing: the files the
// manifest lists as bulk or delta (nil when there is no manifest yet), and
// whether each .zip in the listing opened (its central directory reads).
type Inputs struct {
	Listed []string
	ZipOK  map[string]bool
}

// Decision is the state of the upload after a listing.
type Decision struct {
	Complete    bool
	CompletedAt time.Time
	FirstFileAt time.Time
	Files       []string // the files of the upload
	Waiting     string   // why it is not complete
}

// Temporary reports whether a name is a partial transfer or hidden file.
func Temporary(name string) bool {
	base := name[strings.LastIndex(name, "/")+1:]
	if strings.HasPrefix(base, ".") {
		return true
	}
	for _, suf := range []string{".filepart", ".tmp", ".part"} {
		if strings.HasSuffix(strings.ToLower(base), suf) {
			return true
		}
	}
	return false
}

// Step folds a listing taken at now into w and decides.
func Step(w *Watch, listing []Entry, in Inputs, now time.Time, o Options) Decision {
	if o.Quiet <= 0 {
		o.Quiet = 2 * time.Minute
	}
	cur := map[string]Entry{}
	for _, e := range listing {
		if !Temporary(e.Name) {
			cur[e.Name] = e
		}
	}
	if len(cur) > 0 && w.FirstFileAt.IsZero() {
		// The earliest modification time says when the district began to
		// deliver, better than when this listing happened to see it.
		w.FirstFileAt = now
		for _, e := range cur {
			if !e.ModTime.IsZero() && e.ModTime.Before(w.FirstFileAt) {
				w.FirstFileAt = e.ModTime
			}
		}
	}
	if !same(cur, w.last) {
		w.StableSince = now
	}
	w.last = cur
	d := Decision{FirstFileAt: w.FirstFileAt}
	for n := range cur {
		d.Files = append(d.Files, n)
	}
	sort.Strings(d.Files)
	if len(cur) == 0 {
		d.Waiting = "no files yet"
		return d
	}
	// A zip bundle stands for the whole upload.
	for n := range cur {
		if strings.HasSuffix(strings.ToLower(n), ".zip") {
			if !in.ZipOK[n] {
				d.Waiting = n + " is not a complete zip yet (its central directory does not read)"
				return d
			}
			return stable(d, w, now, o, cur)
		}
	}
	if _, ok := cur["manifest.csv"]; !ok || in.Listed == nil {
		d.Waiting = "no manifest.csv yet"
		return d
	}
	var missing []string
	for _, f := range in.Listed {
		if _, ok := cur[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		d.Waiting = fmt.Sprintf("the manifest lists %s, not uploaded yet", strings.Join(missing, ", "))
		return d
	}
	return stable(d, w, now, o, cur)
}

func stable(d Decision, w *Watch, now time.Time, o Options, cur map[string]Entry) Decision {
	if o.Marker != "" {
		if _, ok := cur[o.Marker]; ok {
			d.Complete, d.CompletedAt = true, now
			return d
		}
	}
	if q := now.Sub(w.StableSince); q < o.Quiet {
		d.Waiting = fmt.Sprintf("files changed %v ago; waiting for %v of quiet", q.Round(time.Second), o.Quiet)
		return d
	}
	d.Complete = true
	d.CompletedAt = w.StableSince
	return d
}

func same(a, b map[string]Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for n, e := range a {
		o, ok := b[n]
		if !ok || o.Size != e.Size || !o.ModTime.Equal(e.ModTime) {
			return false
		}
	}
	return true
}
