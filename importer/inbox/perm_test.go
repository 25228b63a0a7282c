package inbox

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/etlhub/etlhub/internal/testsrv"
)

// A downloaded roster is student data: the file is the importer's alone
// (0600) whatever the umask, also when a partial download left it 0644.
func TestDownloadIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	s := testsrv.StartSSHD(t)
	os.WriteFile(filepath.Join(s.Root, "users.csv"), []byte("sourcedId,givenName\n1,Ana\n"), 0o644)
	os.WriteFile(filepath.Join(s.Root, "orgs.csv"), []byte("sourcedId,name\n1,North High\n"), 0o644)
	c, err := Dial(context.Background(), cfgFor(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	partial := filepath.Join(dir, "orgs.csv")
	os.WriteFile(partial, []byte("sourcedId"), 0o644)
	for _, f := range []string{"users.csv", "orgs.csv"} {
		local := filepath.Join(dir, f)
		if _, err := c.Download(f, local); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(local)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s downloaded as %04o, want 0600", f, m)
		}
	}
}
