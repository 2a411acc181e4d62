package limits

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrSecretNotFound is returned by LoadSecret for an environment variable that is unset.
var ErrSecretNotFound = errors.New("limits: secret not found")

// LoadSecret reads a key or token named by ref:
//
//	file:/etc/erlmcp/secrets/signing.key   the file's contents, trailing newline removed
//	env:ERLMCP_SIGNING_KEY                 the environment variable's value
//	/etc/erlmcp/secrets/signing.key        a bare absolute path is a file
//
// A file must be a regular file readable by its owner only (mode 0600 or 0400): a secret
// that group or others can read is refused, with the mode and the fix in the error. The
// secret itself never appears in errors. Values are inline secrets only through env:, so
// config files never hold them.
func LoadSecret(ref string) ([]byte, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := ref[len("env:"):]
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: environment variable %s is not set", ErrSecretNotFound, name)
		}
		return []byte(v), nil
	case strings.HasPrefix(ref, "file:"):
		return loadSecretFile(ref[len("file:"):])
	case strings.HasPrefix(ref, "/"):
		return loadSecretFile(ref)
	case ref == "":
		return nil, fmt.Errorf("limits: empty secret reference; want file:/path or env:NAME")
	}
	return nil, fmt.Errorf("limits: secret reference must be file:/path or env:NAME (an inline secret in a config file is refused)")
}

func loadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("limits: secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // stat the opened file, so a swap after the check cannot fool it
	if err != nil {
		return nil, fmt.Errorf("limits: secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("limits: secret file %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("limits: secret file %s has mode %04o: group or others can read or write it; run chmod 600 %s", path, perm, path)
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("limits: secret file %s is %d bytes; a key is at most 1 MiB", path, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("limits: secret file %s: %w", path, err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("limits: secret file %s is empty", path)
	}
	return b, nil
}
