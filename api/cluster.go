package api

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// ClusterStatus is GET /api/v1/cluster: the replicas sharing the store and
// the leader's lease.
type ClusterStatus struct {
	// Self is the id of the replica that answered.
	Self string `json:"self"`
	// Store is the store's driver: sqlite (one hub, always the leader) or
	// postgres (replicas with a leader's lease).
	Store string `json:"store"`
	// LeaseTTL and LeaseRenew are the cluster section's settings (empty on SQLite).
	LeaseTTL   string `json:"lease_ttl,omitempty"`
	LeaseRenew string `json:"lease_renew,omitempty"`
	// Lease is the leader's lease; null on SQLite or before any replica took it.
	Lease    *LeaseStatus    `json:"lease"`
	Replicas []ReplicaStatus `json:"replicas"`
}

// LeaseStatus is the leader's lease as stored.
type LeaseStatus struct {
	Holder string `json:"holder"`
	// Token is the fencing token: it grows by one on every acquisition, and
	// every write of the leader checks it.
	Token      int64     `json:"token"`
	ExpiresAt  time.Time `json:"expires_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	AcquiredAt time.Time `json:"acquired_at"`
	// Valid says whether it had not expired when answered.
	Valid bool `json:"valid"`
}

// ReplicaStatus is one replica, as it last reported itself.
type ReplicaStatus struct {
	ID        string    `json:"id"`
	Address   string    `json:"address"`
	Version   string    `json:"version"`
	Role      string    `json:"role"`
	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"`
	// Self marks the replica that answered.
	Self bool `json:"self"`
}

// Cluster tells the cluster's state.
type Cluster interface {
	Cluster(ctx context.Context) (ClusterStatus, error)
}

func (s *server) cluster(c *gin.Context) {
	if s.o.Cluster == nil {
		c.JSON(200, ClusterStatus{Store: s.o.Store.Dialect(), Replicas: []ReplicaStatus{}})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	st, err := s.o.Cluster.Cluster(ctx)
	if err != nil {
		s.storeError(c, err)
		return
	}
	if st.Replicas == nil {
		st.Replicas = []ReplicaStatus{}
	}
	c.JSON(200, st)
}
