package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An SSH client's credentials: each problem named at its key.
func TestSSHClientProblems(t *testing.T) {
	dir := t.TempDir()
	key, open, hosts := filepath.Join(dir, "id"), filepath.Join(dir, "id-open"), filepath.Join(dir, "known_hosts")
	for path, mode := range map[string]os.FileMode{key: 0o600, open: 0o644, hosts: 0o644} {
		if err := os.WriteFile(path, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name                    string
		keyFile, inline, pinned string
		want                    []string // "key: message part"
	}{
		{"good", key, "", hosts, nil},
		{"inline key", "", "-----BEGIN OPENSSH PRIVATE KEY-----", hosts, nil},
		{"neither key", "", "", hosts, []string{"in.sftp: give exactly one"}},
		{"both keys", key, "inline", hosts, []string{"in.sftp: give exactly one"}},
		{"key readable by others", open, "", hosts, []string{"in.sftp.private_key_file: " + open + " is readable by others (mode 0644): chmod 600"}},
		{"key missing", filepath.Join(dir, "nope"), "", hosts, []string{"in.sftp.private_key_file: " + filepath.Join(dir, "nope") + " does not exist"}},
		{"key a directory", dir, "", hosts, []string{"in.sftp.private_key_file: " + dir + " is not a file"}},
		{"no known_hosts", key, "", "", []string{"in.sftp.known_hosts: is required"}},
		{"known_hosts missing", key, "", filepath.Join(dir, "gone"), []string{"in.sftp.known_hosts: " + filepath.Join(dir, "gone") + " does not exist"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Problems
			p.SSHClient("in.sftp", c.keyFile, c.inline, c.pinned)
			if p.Len() != len(c.want) {
				t.Fatalf("problems %+v, want %v", p.list, c.want)
			}
			for i, w := range c.want {
				k, msg, _ := strings.Cut(w, ": ")
				if got := p.list[i]; got.Key != k || !strings.HasPrefix(got.Msg, msg) {
					t.Errorf("problem %d: %s: %s, want %s: %s...", i, got.Key, got.Msg, k, msg)
				}
			}
		})
	}
}
