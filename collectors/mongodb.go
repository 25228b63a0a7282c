package collectors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// mongoProbe measures a MongoDB server: ping, a real read (one document at
// most of database.collection) and, with write_check, the replacement of one
// document of the probe's own, together as latency_ms (ping_ms, read_ms and
// write_ms apart), since a server can answer ping while its queries and
// writes wait; from serverStatus, where the server has them,
// connections current/available and the operation counters' rate. FerretDB
// (the test server) answers serverStatus without "connections" and
// "opcounters": those values are then absent, never zero.
type mongoProbe struct {
	cfg     SourceConfig
	subject string
	mu      sync.Mutex
	client  *mongo.Client
	prevOps float64
	prevAt  time.Time
}

func newMongoProbe(c SourceConfig) (Collector, error) {
	return &mongoProbe{cfg: c, subject: c.subject("mongodb:" + c.Name)}, nil
}

// Close disconnects.
func (p *mongoProbe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.client.Disconnect(ctx)
	p.client = nil
	return err
}

func (p *mongoProbe) connect() (*mongo.Client, error) {
	if p.client != nil {
		return p.client, nil
	}
	uri := p.cfg.MongoDB.URI.Value()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("etlhub-probe").SetMaxPoolSize(2).
		SetServerSelectionTimeout(p.cfg.Timeout).SetConnectTimeout(p.cfg.Timeout).SetTimeout(p.cfg.Timeout))
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), uri, "<uri>"))
	}
	p.client = c
	return c, nil
}

func (p *mongoProbe) Collect(ctx context.Context, now time.Time) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.cfg.measurement(now, model.KindMongoDB, p.subject)
	c, err := p.connect()
	if err != nil {
		return down(m, err)
	}
	db := c.Database(p.cfg.MongoDB.Database)
	start := time.Now()
	if err := db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return down(m, fmt.Errorf("ping: %w", describeNetErr(err, p.cfg.Timeout)))
	}
	ping := time.Since(start)
	coll := db.Collection(p.cfg.MongoDB.Collection)
	err = coll.FindOne(ctx, bson.D{}).Err()
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return down(m, fmt.Errorf("read %s.%s: %w", p.cfg.MongoDB.Database, p.cfg.MongoDB.Collection, describeNetErr(err, p.cfg.Timeout)))
	}
	read := time.Since(start) - ping
	if p.cfg.MongoDB.WriteCheck {
		// One small document of the probe's own, replaced each time: a write
		// waits where the loads' writes wait.
		w := time.Now()
		_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "etlhub-probe:" + p.cfg.Name}},
			bson.D{{Key: "at", Value: now.UTC()}}, options.Replace().SetUpsert(true))
		if err != nil {
			return down(m, fmt.Errorf("write %s.%s: %w", p.cfg.MongoDB.Database, p.cfg.MongoDB.Collection, describeNetErr(err, p.cfg.Timeout)))
		}
		m.Values["write_ms"] = millis(time.Since(w))
	}
	m.Values[model.ValueLatencyMs] = millis(time.Since(start))
	m.Values["ping_ms"] = millis(ping)
	m.Values["read_ms"] = millis(read)
	var st bson.M
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&st); err == nil {
		if conns, ok := st["connections"].(bson.M); ok {
			cur, ok1 := number(conns["current"])
			avail, ok2 := number(conns["available"])
			if ok1 {
				m.Values[model.ValueConnections] = cur
			}
			if ok1 && ok2 && cur+avail > 0 {
				m.Values[model.ValueConnectionsUsedRatio] = cur / (cur + avail)
			}
		}
		if ops, ok := st["opcounters"].(bson.M); ok {
			total := 0.0
			for _, v := range ops {
				if f, ok := number(v); ok {
					total += f
				}
			}
			if !p.prevAt.IsZero() && total >= p.prevOps {
				if secs := now.Sub(p.prevAt).Seconds(); secs > 0 {
					m.Values[model.ValueOpsPerS] = (total - p.prevOps) / secs
				}
			}
			p.prevOps, p.prevAt = total, now
		}
	}
	return Result{Measurements: []model.Measurement{m}}, nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}
