package upload

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)

func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

func TestUploadCompletesAfterQuietPeriod(t *testing.T) {
	var w Watch
	listed := []string{"orgs.csv", "users.csv"}
	steps := []struct {
		m       int
		listing []Entry
		in      Inputs
		done    bool
		waiting string
	}{
		{0, nil, Inputs{}, false, "no files yet"},
		{1, []Entry{{Name: "orgs.csv.filepart", Size: 10}}, Inputs{}, false, "no files yet"},
		{2, []Entry{{Name: "orgs.csv", Size: 100, ModTime: at(2)}, {Name: ".users.csv.swp", Size: 1}}, Inputs{}, false, "no manifest.csv yet"},
		{3, []Entry{{Name: "orgs.csv", Size: 100, ModTime: at(2)}, {Name: "manifest.csv", Size: 9, ModTime: at(3)}},
			Inputs{Listed: listed}, false, "the manifest lists users.csv, not uploaded yet"},
		{4, []Entry{{Name: "orgs.csv", Size: 100, ModTime: at(2)}, {Name: "manifest.csv", Size: 9, ModTime: at(3)}, {Name: "users.csv", Size: 50, ModTime: at(4)}},
			Inputs{Listed: listed}, false, "files changed 0s ago; waiting for 2m0s of quiet"},
		{5, []Entry{{Name: "orgs.csv", Size: 100, ModTime: at(2)}, {Name: "manifest.csv", Size: 9, ModTime: at(3)}, {Name: "users.csv", Size: 80, ModTime: at(5)}},
			Inputs{Listed: listed}, false, "files changed 0s ago; waiting for 2m0s of quiet"}, // still growing
		{7, []Entry{{Name: "orgs.csv", Size: 100, ModTime: at(2)}, {Name: "manifest.csv", Size: 9, ModTime: at(3)}, {Name: "users.csv", Size: 80, ModTime: at(5)}},
			Inputs{Listed: listed}, true, ""},
	}
	for _, s := range steps {
		d := Step(&w, s.listing, s.in, at(s.m), Options{})
		if d.Complete != s.done || d.Waiting != s.waiting {
			t.Fatalf("minute %d: complete=%v waiting=%q; want %v %q", s.m, d.Complete, d.Waiting, s.done, s.waiting)
		}
		if d.Complete {
			if !d.FirstFileAt.Equal(at(2)) || !d.CompletedAt.Equal(at(5)) {
				t.Fatalf("delivered %v..%v, want first file at 03:02 and complete at 03:05", d.FirstFileAt, d.CompletedAt)
			}
		}
	}
}

func TestMarkerEndsTheWait(t *testing.T) {
	var w Watch
	l := []Entry{{Name: "manifest.csv", Size: 1}, {Name: "orgs.csv", Size: 2}, {Name: "_DONE"}}
	d := Step(&w, l, Inputs{Listed: []string{"orgs.csv"}}, t0, Options{Marker: "_DONE"})
	if !d.Complete {
		t.Fatalf("marker present but waiting: %s", d.Waiting)
	}
}

func TestZipCompleteWhenItsDirectoryReads(t *testing.T) {
	var w Watch
	l := []Entry{{Name: "roster.zip", Size: 1000, ModTime: t0}}
	if d := Step(&w, l, Inputs{ZipOK: map[string]bool{}}, t0, Options{}); d.Complete || d.Waiting == "" {
		t.Fatal("a truncated zip counted as complete")
	}
	if d := Step(&w, l, Inputs{ZipOK: map[string]bool{"roster.zip": true}}, at(3), Options{}); !d.Complete {
		t.Fatalf("a complete, quiet zip: %s", d.Waiting)
	}
}

func TestTemporaryNames(t *testing.T) {
	for n, want := range map[string]bool{"users.csv.filepart": true, "a.TMP": true, "x.part": true, ".hidden": true,
		"dir/.x": true, "users.csv": false, "roster.zip": false, "_DONE": false} {
		if Temporary(n) != want {
			t.Errorf("Temporary(%q) = %v", n, !want)
		}
	}
}
