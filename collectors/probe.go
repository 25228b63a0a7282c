package collectors

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
)

// Probe kinds measure a dependency the imports share (the contract:
// model.Measurement) on the source's schedule, as a monitoring agent would.
// Each probe has the source's timeout; a probe that cannot reach its
// dependency returns its up=false measurement and an error, so the runner
// backs off and source health shows it.

// ProbeConfig is what every probe kind shares.
type ProbeConfig struct {
	// Subject names what is measured (one subject, one baseline); by
	// default "KIND:NAME" of the source ("sftp:HOST:PORT" for SFTP).
	Subject string `yaml:"subject"`
	// Tenant marks a dependency of one tenant (its SFTP endpoint); empty
	// for shared infrastructure. Job, optional, is the job it serves.
	Tenant string `yaml:"tenant"`
	Job    string `yaml:"job"`
}

// RedisProbeConfig is a Redis server to probe (PING, INFO).
type RedisProbeConfig struct {
	Addr     string        `yaml:"addr"`
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	DB       int           `yaml:"db"`
	// TLS connects with TLS (the system's roots).
	TLS bool `yaml:"tls"`
}

// MongoProbeConfig is a MongoDB server to probe (ping, a read, serverStatus).
type MongoProbeConfig struct {
	// URI is the connection string, e.g. "${MONGO_URI}" (it may hold a password).
	URI config.Secret `yaml:"uri"`
	// Database and Collection are read (one document at most) to time a real
	// query beside ping; the collection need not exist.
	Database   string `yaml:"database"`
	Collection string `yaml:"collection"`
	// WriteCheck also replaces one document of the probe's own in that
	// collection ({_id: "etlhub-probe:SOURCE"}): writes wait where the
	// loads' writes wait. It needs a user that may write there.
	WriteCheck bool `yaml:"write_check"`
}

// SFTPProbeConfig is one SFTP endpoint to probe (connect, login, list).
type SFTPProbeConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	User string `yaml:"user"`
	// PrivateKeyFile or PrivateKey ("${ENV}") is the login key.
	PrivateKeyFile string        `yaml:"private_key_file"`
	PrivateKey     config.Secret `yaml:"private_key"`
	// KnownHosts pins the server's host key (required: never unchecked).
	KnownHosts string `yaml:"known_hosts"`
	// Dir is listed after login.
	Dir string `yaml:"dir"`
	// Attempts is how many connections one probe tries when the server
	// refuses before login (sshd's MaxStartups drops them at random); the
	// refused ones are its rejected_connections.
	Attempts int `yaml:"attempts"`
}

func (c *SourceConfig) subject(def string) string {
	if c.Probe.Subject != "" {
		return c.Probe.Subject
	}
	return def
}

// validateProbe checks what every probe kind shares: no url, and a subject
// that names the kind.
func validateProbe(c *SourceConfig, p *config.Problems, key string, k model.DependencyKind, def string) {
	if c.URL != "" {
		p.Add(key+".url", "is for the HTTP kinds (httpjson, importer); kind %s takes %s", c.Kind, kindBlock(c.Kind))
	}
	subj := c.subject(def)
	m := model.Measurement{At: time.Unix(0, 0), Source: "x", Subject: subj, Kind: k, Tenant: c.Probe.Tenant, Job: c.Probe.Job, Up: true}
	if err := m.Validate(); err != nil {
		var fe *model.FieldError
		if errors.As(err, &fe) {
			p.Add(key+".probe."+fe.Field, "%s", fe.Msg)
		} else {
			p.Add(key+".probe", "%v", err)
		}
	}
}

func kindBlock(kind string) string {
	if kind == "store" {
		return "no address (it pings the hub's own store)"
	}
	return "its " + kind + ": block"
}

// otherBlocks reports the blocks of other kinds set on a source.
func (c *SourceConfig) otherBlocks(p *config.Problems, key string) {
	for _, b := range []struct {
		name string
		set  bool
	}{{"redis", c.Redis != nil}, {"mongodb", c.MongoDB != nil}, {"sftp", c.SFTP != nil}} {
		if b.set && b.name != c.Kind {
			p.Add(key+"."+b.name, "is only for kind %s", b.name)
		}
	}
	if c.Kind != "redis" && c.Kind != "mongodb" && c.Kind != "sftp" && c.Kind != "store" &&
		(c.Probe.Subject != "" || c.Probe.Tenant != "" || c.Probe.Job != "") {
		p.Add(key+".probe", "is only for the probe kinds (redis, mongodb, sftp, store)")
	}
}

func validateRedis(c *SourceConfig, p *config.Problems, key string) {
	if c.Redis == nil {
		p.Add(key+".redis", "is required for kind redis (addr, and username/password when it has them)")
		return
	}
	r := c.Redis
	if _, port, err := net.SplitHostPort(r.Addr); err != nil || port == "" {
		p.Add(key+".redis.addr", "%q is not HOST:PORT", r.Addr)
	}
	if r.DB < 0 || r.DB > 15 {
		p.Add(key+".redis.db", "%d is outside 0..15", r.DB)
	}
	validateProbe(c, p, key, model.KindRedis, "redis:"+c.Name)
}

func validateMongo(c *SourceConfig, p *config.Problems, key string) {
	if c.MongoDB == nil {
		p.Add(key+".mongodb", "is required for kind mongodb (uri)")
		return
	}
	m := c.MongoDB
	u, err := url.Parse(m.URI.Value())
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") || u.Host == "" {
		p.Add(key+".mongodb.uri", "%q is not a mongodb:// or mongodb+srv:// URI", redactURL(m.URI.Value()))
	}
	if m.Database == "" {
		m.Database = "admin"
	}
	if m.Collection == "" {
		m.Collection = "etlhub_probe"
	}
	validateProbe(c, p, key, model.KindMongoDB, "mongodb:"+c.Name)
}

func validateSFTP(c *SourceConfig, p *config.Problems, key string) {
	if c.SFTP == nil {
		p.Add(key+".sftp", "is required for kind sftp (host, user, a key and known_hosts)")
		return
	}
	s := c.SFTP
	if s.Port == 0 {
		s.Port = 22
	}
	if s.Dir == "" {
		s.Dir = "."
	}
	if s.Attempts == 0 {
		s.Attempts = 3
	}
	if s.Host == "" {
		p.Add(key+".sftp.host", "is required")
	}
	if s.Port < 1 || s.Port > 65535 {
		p.Add(key+".sftp.port", "%d is not a port", s.Port)
	}
	if s.User == "" {
		p.Add(key+".sftp.user", "is required")
	}
	p.SSHClient(key+".sftp", s.PrivateKeyFile, s.PrivateKey.Value(), s.KnownHosts)
	if s.Attempts < 1 || s.Attempts > 10 {
		p.Add(key+".sftp.attempts", "%d is outside 1..10", s.Attempts)
	}
	validateProbe(c, p, key, model.KindSFTP, "sftp:"+net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
}

func validateStore(c *SourceConfig, p *config.Problems, key string) {
	validateProbe(c, p, key, model.KindStore, "store")
}

// probeSecrets are a probe's credentials, for the source's scrubber.
func (c *SourceConfig) probeSecrets() []string {
	var out []string
	if r := c.Redis; r != nil && r.Password != "" {
		out = append(out, r.Password.Value())
	}
	if m := c.MongoDB; m != nil {
		out = append(out, redact.URLSecrets(m.URI.Value())...)
	}
	if s := c.SFTP; s != nil && s.PrivateKey != "" {
		for _, line := range strings.Split(s.PrivateKey.Value(), "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 {
				out = append(out, line)
			}
		}
	}
	return out
}

// measurement starts a probe's measurement of its subject.
func (c *SourceConfig) measurement(now time.Time, k model.DependencyKind, subject string) model.Measurement {
	return model.Measurement{At: now.UTC(), Source: c.Name, Subject: subject, Kind: k, Tenant: c.Probe.Tenant,
		Job: c.Probe.Job, Up: true, Values: map[string]float64{}}
}

// down marks a measurement failed with err (and returns both for Collect).
func down(m model.Measurement, err error) (Result, error) {
	m.Up, m.Error = false, err.Error()
	if len(m.Values) == 0 {
		m.Values = nil
	}
	return Result{Measurements: []model.Measurement{m}}, fmt.Errorf("%s: %w", m.Subject, err)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
