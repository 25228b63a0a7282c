package testsrv

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/embedded"
)

// Redis is a redis-server started for one test.
type Redis struct {
	Addr string
	cmd  *exec.Cmd
	args []string
	bin  string
}

// StartRedis starts redis-server on a free loopback port without
// persistence; it stops when the test ends.
func StartRedis(t testing.TB) *Redis { return startRedis(t, "--save", "", "--appendonly", "no") }

// StartRedisWith starts redis-server without persistence and with extra
// settings ("--maxmemory", "2mb", ...).
func StartRedisWith(t testing.TB, args ...string) *Redis {
	return startRedis(t, append([]string{"--save", "", "--appendonly", "no"}, args...)...)
}

// StartDurableRedis starts redis-server with an append-only file synced on
// every write, so a Stop and Start keeps every acknowledged write.
func StartDurableRedis(t testing.TB) *Redis {
	return startRedis(t, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
}

func startRedis(t testing.TB, persistence ...string) *Redis {
	t.Helper()
	bin, err := findBinary("redis-server", "/usr/bin", "/usr/local/bin")
	if err != nil {
		Missing(t, "redis-server", err)
	}
	port := FreePort(t)
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), bin: bin,
		args: append([]string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", t.TempDir()}, persistence...)}
	r.Start(t)
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	if err := embedded.WaitTCP(r.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}
