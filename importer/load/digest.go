package load

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Digest is an order-independent fingerprint of a set of documents: their
// number and the sum of each one's SHA-256 over its sorted fields. A roster
// file and the collection loaded from it have the same Digest exactly when
// they hold the same documents.
type Digest struct {
	Count int    `json:"count"`
	Sum   string `json:"sum"`
	a, b  uint64
}

func (d *Digest) add(fields map[string]string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x1f%s\x1e", k, fields[k])
	}
	s := h.Sum(nil)
	d.a += binary.BigEndian.Uint64(s[:8])
	d.b += binary.BigEndian.Uint64(s[8:16])
	d.Count++
	d.Sum = fmt.Sprintf("%016x%016x", d.a, d.b)
}

// FileDigest is the Digest of the documents a bulk load of entity.csv makes.
func FileDigest(upload fs.FS, entity, tenant string) (Digest, error) {
	var d Digest
	f, err := upload.Open(entity + ".csv")
	if err != nil {
		return d, err
	}
	defer f.Close()
	cr, header, err := openCSV(f)
	if err != nil {
		return d, fmt.Errorf("%s.csv: %w", entity, err)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return d, fmt.Errorf("%s.csv: %w", entity, err)
		}
		m := map[string]string{}
		for _, e := range document(header, rec, tenant) {
			m[e.Key] = e.Value.(string)
		}
		d.add(m)
	}
}

// CollectionDigest is the Digest of a collection's documents.
func (l *Loader) CollectionDigest(ctx context.Context, name string) (Digest, error) {
	var d Digest
	cur, err := l.DB.Collection(name).Find(ctx, bson.D{})
	if err != nil {
		return d, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc bson.M
		if err := cur.Decode(&doc); err != nil {
			return d, err
		}
		m := map[string]string{}
		for k, v := range doc {
			m[k] = fmt.Sprint(v)
		}
		d.add(m)
	}
	return d, cur.Err()
}
