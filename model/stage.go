package model

// Stage is where a running import is in its work, as the source reports it.
// The importer's stages are the constants below, in the order a run passes
// through them; other sources may report stages of their own (any text up to
// MaxStageLen), which are shown as they are and matched by nothing.
type Stage string

const (
	// StageAwaitingFiles: the night's run is open (state waiting) and the
	// district's files are not all there or still changing. Left for queued
	// when the upload is complete, or the run fails when the files never come.
	StageAwaitingFiles Stage = "awaiting_files"
	// StageQueued: the upload is complete (files_arrived_at is set) and the
	// run waits for a worker of its tenant. Left for downloading.
	StageQueued Stage = "queued"
	// StageDownloading: a worker copies the files from SFTP (resumable).
	StageDownloading Stage = "downloading"
	// StageValidating: the files are checked against the OneRoster rules; a
	// run with blocking errors fails here and nothing is loaded.
	StageValidating Stage = "validating"
	// StageLoading: rows are written to the database (rows_done moves);
	// the pace of this stage is what prediction measures.
	StageLoading Stage = "loading"
	// StagePublishing: the loaded rows are made live at once; then the run
	// succeeds.
	StagePublishing Stage = "publishing"
)
