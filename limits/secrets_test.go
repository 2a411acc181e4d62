package limits

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", "s3cret-key\n", 0o600)
	ro := file("ro", "s3cret-key", 0o400)
	world := file("world", "s3cret-key", 0o644)
	group := file("group", "s3cret-key", 0o640)
	empty := file("empty", "\n", 0o600)
	t.Setenv("ERLMCP_TEST_SECRET", "from-env")

	cases := []struct {
		ref     string
		want    string
		errHas  string
		isNotFd bool
	}{
		{"file:" + good, "s3cret-key", "", false},
		{good, "s3cret-key", "", false},
		{"file:" + ro, "s3cret-key", "", false},
		{"file:" + world, "", "mode 0644: group or others", false},
		{"file:" + group, "", "chmod 600", false},
		{"file:" + empty, "", "is empty", false},
		{"file:" + dir, "", "not a regular file", false},
		{"file:" + filepath.Join(dir, "missing"), "", "no such file", false},
		{"env:ERLMCP_TEST_SECRET", "from-env", "", false},
		{"env:ERLMCP_TEST_UNSET_X", "", "not set", true},
		{"hunter2", "", "file:/path or env:NAME", false},
		{"", "", "empty secret reference", false},
	}
	for _, tc := range cases {
		got, err := LoadSecret(tc.ref)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%q: err %v, want it to mention %q", tc.ref, err, tc.errHas)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%q: error leaks the secret: %v", tc.ref, err)
			}
			if tc.isNotFd && !errors.Is(err, ErrSecretNotFound) {
				t.Errorf("%q: not ErrSecretNotFound", tc.ref)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: got %q %v, want %q", tc.ref, got, err, tc.want)
		}
	}
}

func TestSizeConfig(t *testing.T) {
	c := SizeConfig{}.WithDefaults()
	if c.MaxRequestBytes != 10<<20 || c.MaxResponseBytes != 10<<20 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []SizeConfig{{MaxRequestBytes: 10}, {MaxResponseBytes: -5}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if !TooLarge(11<<20, 0) || TooLarge(10<<20, 0) || !TooLarge(300, 256) {
		t.Fatal("TooLarge")
	}
}
