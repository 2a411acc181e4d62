package limits

import "fmt"

// DefaultMaxMessageBytes is the seed's max_request_size and max_response_size (10 MiB).
const DefaultMaxMessageBytes = 10 << 20

// minMessageBytes is the smallest limit accepted: an initialize request with client info
// and capabilities is a few hundred bytes, so anything smaller breaks every client.
const minMessageBytes = 256

// SizeConfig is the seed's message_size section: the largest request a transport reads and
// the largest response the server sends. The zero value of each field is
// DefaultMaxMessageBytes.
type SizeConfig struct {
	// MaxRequestBytes bounds one incoming message (a TCP line, an HTTP body). Longer ones are
	// refused with CodeMessageTooLarge (HTTP 413), the rest of the line skipped unbuffered.
	MaxRequestBytes int `json:"max_request_size"`
	// MaxResponseBytes bounds one encoded reply; a larger one is replaced by an error.
	MaxResponseBytes int `json:"max_response_size"`
}

// Validate reports the first bad field.
func (c *SizeConfig) Validate() error {
	if c.MaxRequestBytes != 0 && c.MaxRequestBytes < minMessageBytes {
		return fmt.Errorf("limits: max_request_size %d must be ≥ %d bytes", c.MaxRequestBytes, minMessageBytes)
	}
	if c.MaxResponseBytes != 0 && c.MaxResponseBytes < minMessageBytes {
		return fmt.Errorf("limits: max_response_size %d must be ≥ %d bytes", c.MaxResponseBytes, minMessageBytes)
	}
	return nil
}

// WithDefaults returns c with zero fields set to DefaultMaxMessageBytes.
func (c SizeConfig) WithDefaults() SizeConfig {
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxMessageBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxMessageBytes
	}
	return c
}

// TooLarge reports whether a message of n bytes exceeds limit (≤ 0: DefaultMaxMessageBytes).
func TooLarge(n, limit int) bool {
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	return n > limit
}
