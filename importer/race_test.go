//go:build race

package importer

// raceEnabled: the race detector slows the embedded MongoDB-wire server
// about sevenfold, so the chaos test imports a smaller roster under it.
const raceEnabled = true
