package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file holds the byte-level JSON machinery the decoder runs before and
// around the envelope: one iterative validating pass (syntax, UTF-8, depth)
// and skipping over already-validated values. Nothing here recurses, so no
// input can overflow the goroutine stack.

// b2s returns a string that aliases b: valid only while b is reachable and
// unmodified. Used for method names and other fields that alias the frame.
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// snippetMax bounds how much bad input an error message quotes.
const snippetMax = 32

// snippet returns up to snippetMax bytes of b starting at i, quoted.
func snippet(b []byte, i int) string {
	if i >= len(b) {
		return "end of input"
	}
	end := min(i+snippetMax, len(b))
	return strconv.Quote(string(b[i:end]))
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

func parseErr(b []byte, i int, what string) *Error {
	return &Error{Code: CodeParseError, Message: fmt.Sprintf("invalid JSON: %s at offset %d: %s", what, i, snippet(b, i)), ID: NullID}
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// Plain8 reports whether the 8 bytes of x (little-endian) need no attention inside a
// JSON string: no byte < 0x20, none is '"' or '\\', none >= 0x80 (SWAR test). String
// scanners skip such runs 8 bytes at a time.
func Plain8(x uint64) bool {
	q := x ^ (lsb * '"')
	s := x ^ (lsb * '\\')
	t := ((x - lsb*0x20) & ^x) | ((q - lsb) & ^q) | ((s - lsb) & ^s) | x
	return t&msb == 0
}

// strSafe[c] is true for bytes that need no attention inside a string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString validates the string starting at b[i] == '"' and returns the
// index after its closing quote. Long runs go 8 bytes at a time; the byte
// loop after a failed 8-byte test keeps short strings (keys) cheap.
func scanString(b []byte, i int) (int, *Error) {
	j := i + 1
	for {
		for j+8 <= len(b) && Plain8(binary.LittleEndian.Uint64(b[j:])) {
			j += 8
		}
		for j < len(b) && strSafe[b[j]] {
			j++
		}
		if j >= len(b) {
			return j, parseErr(b, i, "unterminated string")
		}
		c := b[j]
		switch {
		case c == '"':
			return j + 1, nil
		case c == '\\':
			if j+1 >= len(b) {
				return j, parseErr(b, i, "unterminated string")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) {
					return j, parseErr(b, j, "truncated \\u escape")
				}
				for k := j + 2; k < j+6; k++ {
					if Unhex(b[k]) < 0 {
						return k, parseErr(b, j, "bad \\u escape")
					}
				}
				j += 6
			default:
				return j, parseErr(b, j, "bad escape")
			}
		case c < 0x20:
			return j, parseErr(b, j, "control character in string")
		default: // c >= utf8.RuneSelf
			r, n := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && n <= 1 {
				return j, &Error{Code: CodeParseError, Message: fmt.Sprintf("invalid UTF-8 in string at offset %d: %s", j, snippet(b, j)), ID: NullID}
			}
			j += n
		}
	}
}

// Unhex returns the value of the hex digit c, or -1 when c is not one.
func Unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber validates the number starting at b[i] and returns the index after it.
func scanNumber(b []byte, i int) (int, *Error) {
	end, ok := NumberEnd(b, i)
	if !ok {
		return end, parseErr(b, i, "bad number")
	}
	return end, nil
}

// NumberEnd scans the JSON number starting at b[i] and returns the index after it, and
// false (with the index of the fault) when the bytes there are not one. Grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func NumberEnd(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, true
}

// validate checks that b is exactly one JSON value (surrounding whitespace
// allowed), that every string is valid UTF-8, and that containers nest at
// most maxDepth deep. It is iterative: the open containers are kept as a
// bit stack (1 = object), so a 10^5-deep input fails at depth maxDepth+1
// without recursion. Errors carry CodeParseError.
func validate(b []byte, maxDepth int) *Error {
	var small [4]uint64 // 255 levels without allocating; grown on demand
	stack := small[:]
	depth := 0
	var err *Error
	i := skipWS(b, 0)
	if i == len(b) {
		return parseErr(b, i, "empty input")
	}
	needValue := true
	for {
		if needValue {
			if i >= len(b) {
				return parseErr(b, i, "unexpected end")
			}
			switch c := b[i]; c {
			case '{', '[':
				depth++
				if depth > maxDepth {
					return &Error{Code: CodeParseError, Message: fmt.Sprintf("nesting depth exceeds %d", maxDepth), ID: NullID}
				}
				w, bit := depth>>6, uint64(1)<<(depth&63)
				if w >= len(stack) {
					stack = append(stack, 0)
				}
				i = skipWS(b, i+1)
				if c == '{' {
					stack[w] |= bit
					if i < len(b) && b[i] == '}' {
						i++
						depth--
						needValue = false
						continue
					}
					if i >= len(b) || b[i] != '"' {
						return parseErr(b, i, "expected object key")
					}
					if i, err = scanKey(b, i); err != nil {
						return err
					}
					continue
				}
				stack[w] &^= bit
				if i < len(b) && b[i] == ']' {
					i++
					depth--
					needValue = false
				}
				continue
			case '"':
				if i, err = scanString(b, i); err != nil {
					return err
				}
			case 't':
				if !bytes.HasPrefix(b[i:], []byte("true")) {
					return parseErr(b, i, "bad literal")
				}
				i += 4
			case 'f':
				if !bytes.HasPrefix(b[i:], []byte("false")) {
					return parseErr(b, i, "bad literal")
				}
				i += 5
			case 'n':
				if !bytes.HasPrefix(b[i:], []byte("null")) {
					return parseErr(b, i, "bad literal")
				}
				i += 4
			default:
				if c != '-' && !isDigit(c) {
					return parseErr(b, i, "unexpected character")
				}
				if i, err = scanNumber(b, i); err != nil {
					return err
				}
			}
			needValue = false
			continue
		}
		// After a value.
		i = skipWS(b, i)
		if depth == 0 {
			if i != len(b) {
				return parseErr(b, i, "trailing data after value")
			}
			return nil
		}
		if i >= len(b) {
			return parseErr(b, i, "unexpected end")
		}
		inObject := stack[depth>>6]&(uint64(1)<<(depth&63)) != 0
		switch c := b[i]; {
		case c == ',':
			i = skipWS(b, i+1)
			if inObject {
				if i >= len(b) || b[i] != '"' {
					return parseErr(b, i, "expected object key")
				}
				if i, err = scanKey(b, i); err != nil {
					return err
				}
			}
			needValue = true
		case c == '}' && inObject, c == ']' && !inObject:
			i++
			depth--
		default:
			if inObject {
				return parseErr(b, i, "expected ',' or '}'")
			}
			return parseErr(b, i, "expected ',' or ']'")
		}
	}
}

// scanKey validates `"key" :` at b[i] and returns the index of the value.
func scanKey(b []byte, i int) (int, *Error) {
	i, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, parseErr(b, i, "expected ':'")
	}
	return skipWS(b, i+1), nil
}

// quoteOrBS8 reports whether any of the 8 bytes of x is '"' or '\\'.
func quoteOrBS8(x uint64) bool {
	q := x ^ (lsb * '"')
	s := x ^ (lsb * '\\')
	return (((q-lsb) & ^q)|((s-lsb) & ^s))&msb != 0
}

// skipString returns the index after the closing quote of the validated
// string at b[i].
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		for j+8 <= len(b) && !quoteOrBS8(binary.LittleEndian.Uint64(b[j:])) {
			j += 8
		}
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) {
			return len(b) // not reached on validated input
		}
		if b[j] == '"' {
			return j + 1
		}
		j += 2 // an escape: the escaped byte is never the closing quote
	}
}

// skipValue returns the index after the validated value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// unquote returns the value of the validated JSON string raw (with quotes).
// Without escapes it aliases raw; with escapes it allocates. Lone surrogates
// become U+FFFD, as in encoding/json.
func unquote(raw []byte) string {
	if len(raw) < 2 {
		return ""
	}
	s := raw[1 : len(raw)-1]
	k := bytes.IndexByte(s, '\\')
	if k < 0 {
		return b2s(s)
	}
	out := make([]byte, 0, len(s))
	out = append(out, s[:k]...)
	for i := k; i < len(s); {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(s[i+2:])); r2 != utf8.RuneError {
						out = utf8.AppendRune(out, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, s[i+1])
		}
		i += 2
	}
	return string(out)
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		r = r<<4 | rune(Unhex(c))
	}
	return r
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string (quotes included), escaped as Marshal escapes
// strings; for hand-built JSON on hot paths such as health answers.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// appendString appends s as a JSON string, escaping as encoding/json does
// with HTML escaping off: '"', '\\', control characters, U+2028 and U+2029;
// invalid UTF-8 becomes \ufffd, so the output is always valid UTF-8.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
