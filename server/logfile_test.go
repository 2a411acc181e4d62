package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestReopenLogAfterMove is logrotate's sequence: the file is renamed, ReopenLog is
// called (postrotate: `erlmcp reopen_log` or SIGHUP), and new lines go to a new file at
// the configured path while the moved file keeps the old ones.
func TestReopenLogAfterMove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log", "erlmcp.log") // the directory is created too
	d := startDaemon(t, func(st *Settings) {
		st.Logging.File = path
		st.Logging.Format = "json"
	})
	d.log.Info("before rotation", "n", 1)
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	d.log.Info("still to the moved file", "n", 2) // the open descriptor follows the rename
	if err := d.ReopenLog(); err != nil {
		t.Fatal(err)
	}
	d.log.Info("after rotation", "n", 3)

	old := readFile(t, rotated)
	cur := readFile(t, path)
	for _, want := range []string{`"msg":"erlmcp started"`, `"msg":"before rotation"`, `"msg":"still to the moved file"`} {
		if !strings.Contains(old, want) {
			t.Errorf("rotated file lacks %s:\n%s", want, old)
		}
	}
	if strings.Contains(old, "after rotation") {
		t.Error("rotated file got lines after ReopenLog")
	}
	if !strings.Contains(cur, `"msg":"log file reopened"`) || !strings.Contains(cur, `"msg":"after rotation"`) || strings.Contains(cur, "before rotation") {
		t.Errorf("new file:\n%s", cur)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != logFileMode {
		t.Errorf("new file mode %v (%v), want %v", fi.Mode().Perm(), err, os.FileMode(logFileMode))
	}

	// Level changes live.
	d.SetLogLevel("error")
	d.log.Info("hidden")
	d.SetLogLevel("debug")
	d.log.Debug("shown")
	cur = readFile(t, path)
	if strings.Contains(cur, "hidden") || !strings.Contains(cur, `"msg":"shown"`) {
		t.Errorf("level not applied:\n%s", cur)
	}
}

func TestReopenLogStderr(t *testing.T) {
	d := startDaemon(t, nil)
	if err := d.ReopenLog(); !errors.Is(err, ErrNoLogFile) {
		t.Fatalf("ReopenLog without a file: %v", err)
	}
}

// TestLogFileConcurrentReopen writes from many goroutines while the file is rotated over
// and over: no line is lost or split.
func TestLogFileConcurrentReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	lf, err := OpenLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	const writers, lines = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(lf, "w%d line %d\n", w, i)
			}
		}()
	}
	var files []string
	for i := range 20 {
		moved := fmt.Sprintf("%s.%d", path, i)
		if err := os.Rename(path, moved); err != nil {
			t.Fatal(err)
		}
		files = append(files, moved)
		if err := lf.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	files = append(files, path)
	total := 0
	for _, f := range files {
		for _, l := range strings.Split(strings.TrimSuffix(readFile(t, f), "\n"), "\n") {
			if l == "" {
				continue
			}
			if !strings.HasPrefix(l, "w") || !strings.Contains(l, " line ") {
				t.Fatalf("split or garbled line %q in %s", l, f)
			}
			total++
		}
	}
	if total != writers*lines {
		t.Fatalf("%d lines across the files, want %d", total, writers*lines)
	}
	lf.Close()
	if _, err := lf.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
