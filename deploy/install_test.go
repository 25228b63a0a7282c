//go:build linux

package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// installBlock is one fenced sh block of the README's Install section.
type installBlock struct {
	line   int    // of the opening fence
	script string // the block's text
	skip   string // why it cannot run here, from the <!-- not run: ... --> before it
}

// installBlocks reads the fenced sh blocks of README.md's "## Install".
func installBlocks(t *testing.T) []installBlock {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []installBlock
	in, inBlock := false, false
	var cur *installBlock
	prev := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case inBlock && l == "```":
			inBlock = false
			blocks = append(blocks, *cur)
		case inBlock:
			cur.script += l + "\n"
		case strings.HasPrefix(l, "## "):
			in = l == "## Install"
		case in && strings.HasPrefix(l, "```"):
			if l != "```sh" {
				t.Fatalf("README.md:%d: a block in Install that is not ```sh: %q", n, l)
			}
			inBlock = true
			cur = &installBlock{line: n}
			if r, ok := strings.CutPrefix(prev, "<!-- not run: "); ok {
				cur.skip = strings.TrimSpace(strings.TrimSuffix(r, "-->"))
			}
		}
		if strings.TrimSpace(l) != "" {
			prev = l
		}
	}
	return blocks
}

// TestReadmeInstall runs the README's Install commands that can run on this
// machine, as root in a copy of the repository, with /etc, /usr/local and
// /var/lib overlaid (what the commands write lands in a temporary directory)
// and in a network namespace of its own, then starts the installed systemd
// unit's ExecStartPre and ExecStart as systemd would (its EnvironmentFile, a
// non-root user, its state directory) and asks /healthz. The blocks that
// cannot run here say why in the README, and another test checks their files.
//
//	go test -run TestReadmeInstall -v ./deploy/
func TestReadmeInstall(t *testing.T) {
	for _, tool := range []string{"unshare", "ip", "setpriv", "openssl", "sha256sum", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the README's install commands run as root (in namespaces of their own)")
		}
		t.Skip("not root")
	}
	blocks := installBlocks(t)
	var run []installBlock
	for _, b := range blocks {
		if b.skip != "" {
			t.Logf("README.md:%d: not run: %s", b.line, b.skip)
			continue
		}
		run = append(run, b)
	}
	if len(blocks) < 5 || len(run) < 2 {
		t.Fatalf("Install has %d sh blocks, %d runnable: want the binary, systemd, image, compose and Kubernetes", len(blocks), len(run))
	}

	// A copy of the repository's tracked files.
	work := t.TempDir()
	src := filepath.Join(work, "src")
	files, err := exec.Command("git", "-C", "..", "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree
			}
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join("..", f))
		os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755)
		if err := os.WriteFile(filepath.Join(src, f), data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	var args []string
	for i, b := range run {
		p := filepath.Join(work, fmt.Sprintf("block%d.sh", i))
		os.WriteFile(p, []byte(b.script), 0o644)
		args = append(args, p)
	}

	// How systemd would start the installed unit.
	unit, err := os.ReadFile("systemd/etlhub.service")
	if err != nil {
		t.Fatal(err)
	}
	key := func(k string) string {
		m := regexp.MustCompile(`(?m)^` + k + `=(.*)$`).FindSubmatch(unit)
		if m == nil {
			t.Fatalf("etlhub.service has no %s=", k)
		}
		return string(m[1])
	}
	state := "/var/lib/" + key("StateDirectory")
	start := fmt.Sprintf(`set -a; . %[1]s; set +a
install -d -m 0700 -o 61000 -g 61000 %[2]s
cd %[3]s
setpriv --reuid 61000 --regid 61000 --clear-groups %[4]s
setpriv --reuid 61000 --regid 61000 --clear-groups %[5]s & pid=$!
n=0
until etlhub healthcheck --url http://127.0.0.1:8080/healthz; do
  kill -0 $pid || { echo "the service exited"; exit 1; }
  n=$((n+1)); [ $n -lt 300 ] || { echo "no /healthz after 60s"; exit 1; }
  sleep 0.2
done
etlhub healthcheck --url http://127.0.0.1:8080/readyz
kill -TERM $pid; wait $pid
`, key("EnvironmentFile"), state, key("WorkingDirectory"), key("ExecStartPre"), key("ExecStart"))
	startFile := filepath.Join(work, "start.sh")
	os.WriteFile(startFile, []byte(start), 0o644)

	up := filepath.Join(work, "overlay")
	script := `set -eu
ip link set lo up
for d in /etc /usr/local /var/lib; do
  mkdir -p "$UP$d/upper" "$UP$d/work"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$UP$d/upper,workdir=$UP$d/work" "$d"
done
start=$1; shift
for b in "$@"; do echo "+++ $b"; (cd "$SRC" && bash -eux "$b"); done
echo "+++ the unit's ExecStartPre and ExecStart"
bash -eux "$start"
`
	// Its own PID namespace too: whatever it leaves running ends with it.
	cmd := exec.Command("unshare", append([]string{"--mount", "--net", "--pid", "--mount-proc", "--propagation", "private", "--fork",
		"bash", "-c", script, "install", startFile}, args...)...)
	cmd.Env = append(os.Environ(), "UP="+up, "SRC="+src, "TARGETS=linux/amd64", "PATH=/usr/local/bin:"+os.Getenv("PATH"))
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("install commands:\n%s", out)
	if err != nil {
		t.Fatalf("install commands: %v", err)
	}

	// Their effects, read from the overlays' upper directories.
	if !regexp.MustCompile(`(?m)^etlhub v1\.2\.3$`).Match(out) {
		t.Error("etlhub version did not print etlhub v1.2.3")
	}
	if fi, err := os.Stat(filepath.Join(up, "usr/local/upper/bin/etlhub")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/usr/local/bin/etlhub: %v %v", fi, err)
	}
	env, err := os.ReadFile(filepath.Join(up, "etc/upper/etlhub/etlhub.env"))
	if fi, _ := os.Stat(filepath.Join(up, "etc/upper/etlhub/etlhub.env")); err != nil || fi.Mode().Perm() != 0o600 ||
		!regexp.MustCompile(`^ETLHUB_TOKEN=[0-9a-f]{48}\n$`).Match(env) {
		t.Errorf("/etc/etlhub/etlhub.env: %v, want ETLHUB_TOKEN=<48 hex digits>, mode 0600", err)
	}
	if fi, err := os.Stat(filepath.Join(up, "etc/upper/etlhub/etlhub.yaml")); err != nil || fi.Mode().Perm()&0o004 == 0 {
		t.Errorf("/etc/etlhub/etlhub.yaml: %v, must be readable by the service's dynamic user", err)
	}
	if got, err := os.ReadFile(filepath.Join(up, "etc/upper/systemd/system/etlhub.service")); err != nil || !bytes.Equal(got, unit) {
		t.Errorf("/etc/systemd/system/etlhub.service is not deploy/systemd/etlhub.service: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(up, "var/lib/upper", strings.TrimPrefix(state, "/var/lib/"), "etlhub.db")); err != nil {
		t.Errorf("the service kept no SQLite file in %s: %v", state, err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s/etlhub.db: mode %v, want private", state, fi.Mode())
	}
	if !strings.Contains(string(out), "/healthz: 200 OK") || !strings.Contains(string(out), "/readyz: 200 OK") {
		t.Error("the service did not answer /healthz and /readyz")
	}
	// Nothing outside the temporary directory changed.
	for _, p := range []string{"/usr/local/bin/etlhub", "/etc/etlhub", "/etc/systemd/system/etlhub.service", state} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists outside the overlay", p)
		}
	}
}
