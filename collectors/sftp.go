package collectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sftpProbe measures one SFTP endpoint: TCP connect, SSH login (the host
// key checked against known_hosts, never skipped) and a listing of dir, each
// timed. A server that drops the connection before login (sshd's
// MaxStartups, or a full accept queue) is a refusal: the probe tries again
// up to attempts times, and counts the refusals as rejected_connections.
type sftpProbe struct {
	cfg     SourceConfig
	subject string
	addr    string
}

func newSFTPProbe(c SourceConfig) (Collector, error) {
	s := c.SFTP
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	return &sftpProbe{cfg: c, subject: c.subject("sftp:" + addr), addr: addr}, nil
}

// errRefused: the server closed the connection before login.
var errRefused = errors.New("the server closed the connection before login (sshd MaxStartups, or its accept queue is full)")

func (p *sftpProbe) Collect(ctx context.Context, now time.Time) (Result, error) {
	m := p.cfg.measurement(now, model.KindSFTP, p.subject)
	cc, err := p.clientConfig()
	if err != nil {
		return down(m, err)
	}
	refused := 0
	var lastErr error
	for try := 0; try < p.cfg.SFTP.Attempts; try++ {
		if try > 0 {
			select { // sshd's MaxStartups drops at random: a moment, then again
			case <-ctx.Done():
			case <-time.After(time.Duration(try) * 100 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			break
		}
		err := p.once(ctx, cc, &m)
		if err == nil {
			m.Values[model.ValueRejectedConnections] = float64(refused)
			return Result{Measurements: []model.Measurement{m}}, nil
		}
		lastErr = err
		if !errors.Is(err, errRefused) {
			break
		}
		refused++
	}
	if ctx.Err() != nil && lastErr == nil {
		lastErr = fmt.Errorf("no answer within %v (timeout)", p.cfg.Timeout)
	}
	m.Values = map[string]float64{model.ValueRejectedConnections: float64(refused)}
	if refused > 0 {
		lastErr = fmt.Errorf("%d of %d connections refused: %w", refused, refused+boolInt(!errors.Is(lastErr, errRefused)), lastErr)
	}
	return down(m, lastErr)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *sftpProbe) clientConfig() (*ssh.ClientConfig, error) {
	s := p.cfg.SFTP
	keyPEM := []byte(s.PrivateKey.Value())
	if s.PrivateKeyFile != "" {
		b, err := os.ReadFile(s.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("private key: %w", err)
		}
		keyPEM = b
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("private key: %v", err) // the key itself is never printed
	}
	hk, err := knownhosts.New(s.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, Timeout: p.cfg.Timeout,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := hk(host, remote, key)
			var ke *knownhosts.KeyError
			if errors.As(err, &ke) {
				if len(ke.Want) > 0 {
					return fmt.Errorf("the host key CHANGED from the one pinned in known_hosts; refusing to connect (a new server, or a man in the middle)")
				}
				return fmt.Errorf("the host key is not in known_hosts; refusing to connect")
			}
			return err
		}}, nil
}

// once is one connect, login and list, timed into m.
func (p *sftpProbe) once(ctx context.Context, cc *ssh.ClientConfig, m *model.Measurement) error {
	start := time.Now()
	d := net.Dialer{Timeout: p.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return fmt.Errorf("connect: %w", describeNetErr(err, p.cfg.Timeout))
	}
	defer conn.Close()
	// The whole probe is bounded by its context: a hung server is a timeout.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	connected := time.Now()
	sc, chans, reqs, err := ssh.NewClientConn(conn, p.addr, cc)
	if err != nil {
		if refusedBeforeLogin(err) {
			return errRefused
		}
		return fmt.Errorf("login: %w", describeNetErr(err, p.cfg.Timeout))
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	loggedIn := time.Now()
	sf, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("sftp subsystem: %w", describeNetErr(err, p.cfg.Timeout))
	}
	defer sf.Close()
	if _, err := sf.ReadDir(p.cfg.SFTP.Dir); err != nil {
		return fmt.Errorf("list %s: %w", p.cfg.SFTP.Dir, describeNetErr(err, p.cfg.Timeout))
	}
	done := time.Now()
	m.Values[model.ValueConnectMs] = millis(connected.Sub(start))
	m.Values[model.ValueLoginMs] = millis(loggedIn.Sub(connected))
	m.Values[model.ValueListMs] = millis(done.Sub(loggedIn))
	m.Values[model.ValueLatencyMs] = millis(done.Sub(start))
	return nil
}

// refusedBeforeLogin: the server hung up during the SSH handshake (EOF or
// a reset before any authentication), as sshd does past MaxStartups.
func refusedBeforeLogin(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}
