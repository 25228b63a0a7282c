package embedded

import (
	"fmt"
	"net"
	"os/exec"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Redis is a Redis server for the demo: redis-server when it is installed,
// otherwise miniredis in this process (DemoOnly: no persistence, for a demo
// and nothing else).
type Redis struct {
	Addr     string
	DemoOnly bool
	stop     func()
}

// StartRedis starts one; dir holds redis-server's working files.
func StartRedis(dir string) (*Redis, error) {
	if bin, err := exec.LookPath("redis-server"); err == nil {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--dir", dir, "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		stop := func() { cmd.Process.Kill(); cmd.Wait() }
		if err := WaitTCP(addr, 10*time.Second); err != nil {
			stop()
			return nil, fmt.Errorf("redis-server: %w", err)
		}
		return &Redis{Addr: addr, stop: stop}, nil
	}
	m, err := miniredis.Run()
	if err != nil {
		return nil, err
	}
	return &Redis{Addr: m.Addr(), DemoOnly: true, stop: m.Close}, nil
}

// Stop stops the server.
func (r *Redis) Stop() { r.stop() }
