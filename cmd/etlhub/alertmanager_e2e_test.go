package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
)

// amtool runs Debian's amtool against the hub with a bearer token.
func (h *hubProc) amtool(t *testing.T, token string, args ...string) (string, error) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "http.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("authorization: {type: Bearer, credentials: %q}\n", token)), 0o600)
	cmd := exec.Command(testsrv.Amtool(t), append([]string{"--alertmanager.url=" + h.url, "--http.config.file=" + cfg, "--timeout=10s"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user config
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

// TestAmtoolAgainstTheHub: amtool posts an alert to etlhub the way
// Prometheus would, it fires on the board, amtool queries it back and
// silences it; a tenant-scoped token posts only its tenant's alerts.
func TestAmtoolAgainstTheHub(t *testing.T) {
	h := startHubIn(t, t.TempDir(), "  []", nowJobs("", "dade"), "rules: {tick: 1s}")
	out, err := h.amtool(t, opTok, "alert", "add", "alertname=SFTPDiskFull", "severity=critical", "tenant=dade", "instance=sftp1:9100",
		"--annotation=summary=SFTP disk 97% full", "--generator-url=http://prometheus:9090/graph")
	if err != nil {
		t.Fatalf("amtool alert add: %v\n%s", err, out)
	}
	var board map[string]any
	h.eventually("the posted alert fires on the board", 20*time.Second, func() bool {
		_, board = h.call("GET", "/api/v1/alerts?rule=SFTPDiskFull", viewTok, nil)
		list, _ := board["alerts"].([]any)
		return len(list) == 1 && list[0].(map[string]any)["state"] == "firing"
	})
	a := board["alerts"].([]any)[0].(map[string]any)
	if a["tenant"] != "dade" || a["severity"] != "critical" || a["summary"] != "SFTP disk 97% full" || a["source"] != "prometheus" {
		t.Fatalf("board alert = %v", a)
	}
	out, err = h.amtool(t, viewTok, "alert", "query", "-o", "json", "alertname=SFTPDiskFull")
	if err != nil {
		t.Fatalf("amtool alert query: %v\n%s", err, out)
	}
	var alerts []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		Status      struct{ State string }
	}
	if err := json.Unmarshal([]byte(out), &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("amtool alert query -o json: %v\n%s", err, out)
	}
	if alerts[0].Labels["instance"] != "sftp1:9100" || alerts[0].Annotations["summary"] != "SFTP disk 97% full" || alerts[0].Status.State != "active" {
		t.Fatalf("queried alert = %+v", alerts[0])
	}
	// Our own rules' alerts answer the same query language.
	out, _ = h.amtool(t, viewTok, "alert", "query", "-o", "json", "alertname=nothing-like-this")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("a filter matching nothing: %s", out)
	}

	// A tenant-scoped token cannot post another tenant's alert.
	if out, err := h.amtool(t, dadeTok, "alert", "add", "alertname=RedisMemory", "tenant=polk"); err == nil {
		t.Fatalf("a dade token posted polk's alert: %s", out)
	}
	if out, err := h.amtool(t, dadeTok, "alert", "add", "alertname=RedisMemory", "tenant=dade"); err != nil {
		t.Fatalf("a dade token posting dade's alert: %v\n%s", err, out)
	}

	// A scoped token sees its tenant's posted alerts, not others' nor
	// tenant-less ones.
	if out, err := h.amtool(t, opTok, "alert", "add", "alertname=NodeDown", "instance=db1:9100"); err != nil {
		t.Fatalf("amtool alert add: %v\n%s", err, out)
	}
	h.eventually("NodeDown fires", 20*time.Second, func() bool {
		_, b := h.call("GET", "/api/v1/alerts?rule=NodeDown", viewTok, nil)
		list, _ := b["alerts"].([]any)
		return len(list) == 1
	})
	h.eventually("RedisMemory fires", 20*time.Second, func() bool {
		_, b := h.call("GET", "/api/v1/alerts?rule=RedisMemory", viewTok, nil)
		list, _ := b["alerts"].([]any)
		return len(list) == 1
	})
	out, err = h.amtool(t, dadeTok, "alert", "query", "-o", "json")
	if err != nil || !strings.Contains(out, "RedisMemory") || strings.Contains(out, "NodeDown") || strings.Contains(out, "polk") {
		t.Fatalf("the dade token's alerts: %v\n%s", err, out)
	}

	// A silence from amtool, seen by amtool and applied by the hub.
	out, err = h.amtool(t, opTok, "silence", "add", "alertname=SFTPDiskFull", "tenant=dade", "--comment=disk swap tonight", "--duration=2h")
	if err != nil {
		t.Fatalf("amtool silence add: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	out, err = h.amtool(t, viewTok, "silence", "query", "-o", "json")
	if err != nil {
		t.Fatalf("amtool silence query: %v\n%s", err, out)
	}
	var sils []struct {
		ID        string `json:"id"`
		Comment   string `json:"comment"`
		CreatedBy string `json:"createdBy"`
		Matchers  []struct{ Name, Value string }
	}
	if err := json.Unmarshal([]byte(out), &sils); err != nil || len(sils) != 1 || sils[0].ID != id ||
		!strings.HasPrefix(sils[0].Comment, "disk swap tonight (by ") || sils[0].CreatedBy != "operator" ||
		sils[0].Matchers[0].Name != "alertname" {
		t.Fatalf("amtool silence query: %v\n%s", err, out)
	}
	// An alert that fires under the silence is silenced, and amtool shows it
	// only when asked for silenced ones.
	if out, err := h.amtool(t, opTok, "alert", "add", "alertname=SFTPDiskFull", "severity=critical", "tenant=dade", "instance=sftp2:9100"); err != nil {
		t.Fatalf("amtool alert add: %v\n%s", err, out)
	}
	h.eventually("the second disk alert fires, silenced", 20*time.Second, func() bool {
		_, b := h.call("GET", "/api/v1/alerts?rule=SFTPDiskFull", viewTok, nil)
		list, _ := b["alerts"].([]any)
		for _, x := range list {
			if a := x.(map[string]any); a["state"] == "firing" && a["silenced"] == true {
				return true
			}
		}
		return false
	})
	query := func(args ...string) int {
		out, err := h.amtool(t, viewTok, append([]string{"alert", "query", "-o", "json"}, args...)...)
		var list []any
		if err != nil || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("amtool alert query %v: %v\n%s", args, err, out)
		}
		return len(list)
	}
	if n, ns := query("-a", "-s", "instance=sftp2:9100"), query("instance=sftp2:9100"); n != 1 || ns != 0 {
		t.Fatalf("silenced alert: %d with --silenced, %d without; want 1 and 0", n, ns)
	}
	if n := query("instance=~sftp.*", "-a", "-s"); n != 2 {
		t.Fatalf("regex filter found %d alerts, want 2", n)
	}
	_, body := h.call("GET", "/api/v1/silences", viewTok, nil)
	if list, _ := body["silences"].([]any); len(list) != 1 || !strings.Contains(fmt.Sprint(list[0]), "rule") {
		t.Fatalf("the hub's silences = %v", body)
	}
	// A negative matcher from amtool is kept as one, and amtool reads it back.
	if out, err := h.amtool(t, opTok, "silence", "add", "alertname=RedisMemory", "tenant!=polk", "--comment=not polk", "--duration=1h"); err != nil {
		t.Fatalf("amtool silence add with !=: %v\n%s", err, out)
	}
	out, err = h.amtool(t, viewTok, "silence", "query", "alertname=RedisMemory", "-o", "json")
	if err != nil || !strings.Contains(out, `{"isEqual":false,"isRegex":false,"name":"tenant","value":"polk"}`) {
		t.Fatalf("amtool silence query of the negative silence: %v\n%s", err, out)
	}
	if out, err := h.amtool(t, opTok, "silence", "add", "tenant!=polk", "--comment=everything", "--duration=1h"); err == nil {
		t.Fatalf("a silence of only a negative matcher was taken: %s", out)
	}
	// amtool's filters select silences; expire ends one, and it is gone.
	out, err = h.amtool(t, viewTok, "silence", "query", "-q", "alertname=SFTPDiskFull")
	if err != nil || strings.TrimSpace(out) != id {
		t.Fatalf("amtool silence query alertname=SFTPDiskFull: %v\n%s (want only %s)", err, out, id)
	}
	if out, err := h.amtool(t, viewTok, "silence", "expire", id); err == nil {
		t.Fatalf("a viewer expired a silence: %s", out)
	}
	if out, err := h.amtool(t, opTok, "silence", "expire", id); err != nil {
		t.Fatalf("amtool silence expire: %v\n%s", err, out)
	}
	out, err = h.amtool(t, viewTok, "silence", "query", "-q", "alertname=SFTPDiskFull")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("the expired silence is still listed: %v\n%s", err, out)
	}
}
