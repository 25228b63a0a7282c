package importer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
)

// TestMetricsAfterARun: the importer's /metrics passes promtool and carries
// the Go runtime and process, the build's version, each tenant's queue depth
// and run durations, with every outcome's counter there before it happens.
func TestMetricsAfterARun(t *testing.T) {
	sshd := testsrv.StartSSHD(t)
	rds := testsrv.StartRedis(t)
	mongoURI := testsrv.FerretDB(t)
	inboxDir := filepath.Join(sshd.Root, "dade")
	os.MkdirAll(inboxDir, 0o755)
	cfg := &Config{Version: "v9.9.9-test", Listen: "127.0.0.1:0", WorkDir: t.TempDir(), StatusToken: "status-token-123456",
		Poll: 100 * time.Millisecond, Quiet: 300 * time.Millisecond}
	cfg.Redis.Addr = rds.Addr
	cfg.Mongo.URI = config.Secret(mongoURI)
	sftpCfg := inbox.Config{Host: sshd.Host, Port: sshd.Port, User: sshd.User, PrivateKey: config.Secret(sshd.KeyPEM),
		KnownHosts: sshd.KnownHosts, Dir: inboxDir}
	cfg.Tenants = []TenantConfig{{Name: "dade", SFTP: sftpCfg}}
	im, addr := runImporter(t, cfg)
	e := &env{im: im, api: "http://" + addr}

	src := t.TempDir()
	oneroster.Generate(src, oneroster.GenOptions{Students: 50, Seed: 3})
	up, err := inbox.Dial(context.Background(), sftpCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	files, _ := filepath.Glob(filepath.Join(src, "*.csv"))
	for _, f := range files {
		if filepath.Base(f) != "manifest.csv" {
			data, _ := os.ReadFile(f)
			up.Put(filepath.Base(f), strings.NewReader(string(data)))
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(src, "manifest.csv"))
	up.Put("manifest.csv", strings.NewReader(string(manifest)))
	if got := e.finishedRun(t, ""); got.State != "succeeded" {
		t.Fatalf("run = %+v", got)
	}

	req, _ := http.NewRequest("GET", e.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer status-token-123456")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(data)
	cmd := exec.Command(testsrv.Promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	want := map[string]string{
		`etlhub_importer_run_duration_seconds_count{outcome="succeeded",tenant="dade"}`: "1",
		`etlhub_importer_run_attempts_total{outcome="succeeded",tenant="dade"}`:         "1",
		`etlhub_importer_run_attempts_total{outcome="failed",tenant="dade"}`:            "0",
		`etlhub_importer_dependency_failures_total{dependency="sftp:dade"}`:             "0",
		`etlhub_importer_queue_depth{tenant="dade"}`:                                    "0",
		`etlhub_importer_queue_scrape_ok`:                                               "1",
	}
	for series, v := range want {
		if !strings.Contains("\n"+text, "\n"+series+" "+v+"\n") {
			t.Errorf("want %s %s; /metrics has:\n%s", series, v, lines(text, strings.SplitN(series, "{", 2)[0]))
		}
	}
	for _, name := range []string{"go_goroutines ", "process_resident_memory_bytes ", `etlhub_importer_build_info{goversion="go`} {
		if !strings.Contains(text, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(text, `version="v9.9.9-test"`) {
		t.Errorf("build info lacks the version:\n%s", lines(text, "build_info"))
	}
	// Redis gone: the scrape still answers and says the depth is unknown.
	rds.Stop()
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(data), "etlhub_importer_queue_scrape_ok 0\n") || strings.Contains(string(data), "etlhub_importer_queue_depth{") {
		t.Errorf("with Redis down: %s", lines(string(data), "queue"))
	}
}

func lines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(strings.Join(out, "\n"))
}
