package collectors

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

func TestProbeConfigProblemsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		c    SourceConfig
		key  string
	}{
		{"redis without a block", SourceConfig{Name: "r", Kind: "redis"}, "s.redis"},
		{"redis addr", SourceConfig{Name: "r", Kind: "redis", Redis: &RedisProbeConfig{Addr: "localhost"}}, "s.redis.addr"},
		{"url on a probe", SourceConfig{Name: "r", Kind: "redis", URL: "http://x", Redis: &RedisProbeConfig{Addr: "h:1"}}, "s.url"},
		{"another kind's block", SourceConfig{Name: "r", Kind: "store", Redis: &RedisProbeConfig{Addr: "h:1"}}, "s.redis"},
		{"subject of another kind", SourceConfig{Name: "r", Kind: "store", Probe: ProbeConfig{Subject: "redis:x"}}, "s.probe.subject"},
		{"probe on an http kind", SourceConfig{Name: "r", Kind: "importer", URL: "http://x", Probe: ProbeConfig{Tenant: "a"}}, "s.probe"},
		{"mongodb uri", SourceConfig{Name: "m", Kind: "mongodb", MongoDB: &MongoProbeConfig{URI: "http://u:pw@h"}}, "s.mongodb.uri"},
		{"sftp known_hosts", SourceConfig{Name: "f", Kind: "sftp", SFTP: &SFTPProbeConfig{Host: "h", User: "u", PrivateKey: "k"}}, "s.sftp.known_hosts"},
		{"sftp key file missing", SourceConfig{Name: "f", Kind: "sftp", SFTP: &SFTPProbeConfig{Host: "h", User: "u",
			PrivateKeyFile: filepath.Join(dir, "nope"), KnownHosts: filepath.Join(dir, "nope2")}}, "s.sftp.private_key_file"},
		{"sftp attempts", SourceConfig{Name: "f", Kind: "sftp", SFTP: &SFTPProbeConfig{Host: "h", User: "u", PrivateKey: "k", Attempts: 99}}, "s.sftp.attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p config.Problems
			tc.c.Validate(&p, "s")
			got := fmt.Sprint(p)
			if !strings.Contains(got, "{0 "+tc.key+" ") {
				t.Fatalf("problems %s do not name %s", got, tc.key)
			}
			if strings.Contains(got, "pw@") {
				t.Fatalf("a password in the problems: %s", got)
			}
		})
	}
	ok := SourceConfig{Name: "redis-main", Kind: "redis", Redis: &RedisProbeConfig{Addr: "127.0.0.1:6379"}}
	var p config.Problems
	ok.Validate(&p, "s")
	if p.Len() != 0 {
		t.Fatalf("a good redis probe: %v", p)
	}
}

// The SFTP probe checks the host key against known_hosts: a server whose
// key is not pinned is refused (down, saying so), never trusted.
func TestSFTPProbeRefusesAnUnpinnedHostKey(t *testing.T) {
	sshd := testsrv.StartSSHD(t)
	other := testsrv.StartSSHD(t) // its known_hosts pins a different key
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	os.WriteFile(key, sshd.KeyPEM, 0o600)
	wrong := filepath.Join(dir, "known_hosts")
	b, _ := os.ReadFile(other.KnownHosts)
	os.WriteFile(wrong, []byte(strings.Replace(string(b), fmt.Sprint(other.Port), fmt.Sprint(sshd.Port), 1)), 0o600)
	mk := func(kh string) Collector {
		c := SourceConfig{Name: "dade-sftp", Kind: "sftp", Timeout: 5 * time.Second,
			SFTP: &SFTPProbeConfig{Host: sshd.Host, Port: sshd.Port, User: sshd.User, PrivateKeyFile: key, KnownHosts: kh, Dir: sshd.Root}}
		var p config.Problems
		c.Validate(&p, "s")
		if p.Len() != 0 {
			t.Fatal(p)
		}
		col, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		return col
	}
	res, err := mk(sshd.KnownHosts).Collect(context.Background(), time.Now())
	if err != nil || len(res.Measurements) != 1 || !res.Measurements[0].Up || res.Measurements[0].Values[model.ValueListMs] <= 0 {
		t.Fatalf("pinned: %+v, %v", res, err)
	}
	res, err = mk(wrong).Collect(context.Background(), time.Now())
	if err == nil || len(res.Measurements) != 1 || res.Measurements[0].Up || !strings.Contains(res.Measurements[0].Error, "CHANGED") {
		t.Fatalf("a different pinned key: %+v, %v; want down, the host key refused", res, err)
	}
}
