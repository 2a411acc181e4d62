package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// LogFile is an io.Writer on a log file that can be reopened at the same path, so that
// logrotate can move the file away and the daemon continues in a new one (logrotate's
// postrotate runs `erlmcp reopen_log`, or sends SIGHUP). Safe for concurrent use: slog
// handlers write one record per Write call, and a record is never split across files.
type LogFile struct {
	path string
	mu   sync.RWMutex // Write holds it shared, Reopen exclusively
	f    *os.File
}

// logFileMode is the mode of a log file the daemon creates (logrotate's "create 0640"
// sets the same on the files it makes).
const logFileMode = 0o640

// OpenLogFile opens (creating, appending) the log file at path, making its directory.
func OpenLogFile(path string) (*LogFile, error) {
	lf := &LogFile{path: path}
	f, err := lf.open()
	if err != nil {
		return nil, err
	}
	lf.f = f
	return lf, nil
}

func (lf *LogFile) open() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(lf.path), 0o750); err != nil {
		return nil, fmt.Errorf("logging.file: %w", err)
	}
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, logFileMode)
	if err != nil {
		return nil, fmt.Errorf("logging.file: %w", err)
	}
	return f, nil
}

// Path returns the file's path.
func (lf *LogFile) Path() string { return lf.path }

// Write appends p to the current file.
func (lf *LogFile) Write(p []byte) (int, error) {
	lf.mu.RLock()
	defer lf.mu.RUnlock()
	if lf.f == nil {
		return 0, os.ErrClosed
	}
	return lf.f.Write(p)
}

// Reopen opens the path again and switches writes to it, then closes the old file. If
// the path cannot be opened, writes go on to the old file and the error is returned.
func (lf *LogFile) Reopen() error {
	f, err := lf.open()
	if err != nil {
		return err
	}
	lf.mu.Lock()
	old := lf.f
	lf.f = f
	lf.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; later writes fail with os.ErrClosed. Idempotent.
func (lf *LogFile) Close() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}

// DaemonLog is the daemon's log: its slog.Logger, the level (changeable live, e.g. by a
// config reload) and, when logging.file is set, the reopenable file.
type DaemonLog struct {
	Logger *slog.Logger
	Level  *slog.LevelVar
	file   *LogFile // nil when logging to a stream
}

// NewDaemonLog returns the daemon's log for ls: to the file ls.File when set, else to w
// (stderr when nil); text or JSON by ls.Format; at ls.Level.
func NewDaemonLog(w io.Writer, ls LoggingSettings) (*DaemonLog, error) {
	dl := &DaemonLog{Level: new(slog.LevelVar)}
	dl.Level.Set(ParseLogLevel(ls.Level))
	if ls.File != "" {
		lf, err := OpenLogFile(ls.File)
		if err != nil {
			return nil, err
		}
		dl.file = lf
		w = lf
	} else if w == nil {
		w = os.Stderr
	}
	opts := &slog.HandlerOptions{Level: dl.Level}
	if strings.EqualFold(ls.Format, "json") {
		dl.Logger = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		dl.Logger = slog.New(slog.NewTextHandler(w, opts))
	}
	return dl, nil
}

// ErrNoLogFile is returned by ReopenLog when the daemon logs to a stream, not a file.
var ErrNoLogFile = errors.New("server: logging.file is not set; the log goes to stderr and there is nothing to reopen")

// Reopen reopens the log file (after logrotate moved it). With no file it returns
// ErrNoLogFile.
func (dl *DaemonLog) Reopen() error {
	if dl.file == nil {
		return ErrNoLogFile
	}
	return dl.file.Reopen()
}

// SetLevel changes the level live (debug|info|warning|error).
func (dl *DaemonLog) SetLevel(level string) { dl.Level.Set(ParseLogLevel(level)) }

// File returns the log file, or nil when logging to a stream.
func (dl *DaemonLog) File() *LogFile { return dl.file }

// Close closes the log file, if any.
func (dl *DaemonLog) Close() error {
	if dl.file == nil {
		return nil
	}
	return dl.file.Close()
}
