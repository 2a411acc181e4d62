package server

import (
	"encoding/binary"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/erlmcp/erlmcp-go/codec"
	"github.com/google/jsonschema-go/jsonschema"
)

// fastSchema is a tool schema compiled for the common subset of JSON Schema (type, enum,
// const, minimum/maximum and their exclusive forms, minLength/maxLength/pattern,
// properties/required/additionalProperties, items/minItems/maxItems, annotations). It checks
// raw JSON bytes in one walk, with no decoding into map[string]any and no allocation for
// plain input, and answers only "certainly valid": whatever it cannot vouch for (a failed
// check, duplicate keys, escaped keys, lone-surrogate escapes, numbers outside float64,
// deep nesting) goes to the full path, sonic decoding plus jsonschema-go, which then gives
// the verdict and its error message. So the verdicts are jsonschema-go's by construction,
// provided fastSchema never accepts what jsonschema-go refuses: TestFastSchemaDifferential
// and FuzzFastSchema hold it to that, and to accepting everything jsonschema-go accepts in
// canonical JSON.
type fastSchema struct {
	types   uint8 // allowed JSON types (fastT* bits); 0: any
	never   bool  // the false schema ({"not":{}}): nothing is valid
	enum    []fastScalar
	hasEnum bool
	konst   *fastScalar

	numChecks            uint8 // fastMin... bits
	min, max, xmin, xmax float64

	strChecks      bool // minLength, maxLength, pattern, enum or const: a string's content matters
	minLen, maxLen int  // -1: none
	pattern        *regexp.Regexp

	props      []fastProp
	additional *fastSchema // nil: any
	noExtra    bool        // additionalProperties: false
	nRequired  int         // props[:nRequired] are the required ones

	items              *fastSchema
	minItems, maxItems int // -1: none
}

// fastProp is a property the schema names in properties or required.
type fastProp struct {
	name    string
	schema  *fastSchema // nil: any value
	inProps bool        // listed in properties (else only in required: additionalProperties applies)
}

// fastScalar is an enum or const value: only JSON scalars are compiled.
type fastScalar struct {
	t   uint8 // one fastT* bit; fastTInt|fastTNum for every number
	s   string
	f   float64
	yes bool
}

// JSON types as bits. A number is fastTInt when integral (jsonschema-go's rule: math.Modf
// of its float64 has no fraction), else fastTNum.
const (
	fastTNull uint8 = 1 << iota
	fastTBool
	fastTInt
	fastTNum
	fastTStr
	fastTArr
	fastTObj
)

const (
	fastMin uint8 = 1 << iota
	fastMax
	fastXMin
	fastXMax
)

// fastMaxProps bounds the properties of one object schema (the duplicate-key check keeps
// one bit per property); fastMaxDepth bounds nesting. Past either, the full path serves.
const (
	fastMaxProps = 64
	fastMaxDepth = 64
)

// draft202012 is the only $schema the fast path accepts besides none: draft-07's rules
// for items and $ref differ.
const draft202012 = "https://json-schema.org/draft/2020-12/schema"

// fastSchemaKeywords are the Schema fields compileFast understands (or that validation
// ignores: annotations, format, unknown keywords). Any other field set sends the whole
// schema to jsonschema-go, including fields a newer jsonschema-go adds.
var fastSchemaKeywords = map[string]bool{
	"Schema": true, "Comment": true, "Title": true, "Description": true, "Default": true,
	"Deprecated": true, "ReadOnly": true, "WriteOnly": true, "Examples": true,
	"Type": true, "Types": true, "Enum": true, "Const": true,
	"Minimum": true, "Maximum": true, "ExclusiveMinimum": true, "ExclusiveMaximum": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Items": true, "MinItems": true, "MaxItems": true,
	"Required": true, "Properties": true, "AdditionalProperties": true,
	"Not":    true, // only as the false schema, checked below
	"Format": true, "ContentEncoding": true, "ContentMediaType": true,
	"Extra": true, "PropertyOrder": true,
}

// compileFast compiles a resolved schema for the fast path, or returns nil when it uses
// anything outside the subset.
func compileFast(rs *jsonschema.Resolved) *fastSchema {
	if rs == nil {
		return nil
	}
	root := rs.Schema()
	if root == nil || (root.Schema != "" && root.Schema != draft202012) {
		return nil
	}
	fs, ok := compileFastNode(root, true)
	if !ok {
		return nil
	}
	return fs
}

func compileFastNode(s *jsonschema.Schema, root bool) (*fastSchema, bool) {
	if s == nil {
		return nil, false
	}
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || v.Field(i).IsZero() {
			continue
		}
		if !fastSchemaKeywords[f.Name] {
			return nil, false
		}
	}
	if s.Schema != "" && !root {
		return nil, false
	}
	fs := &fastSchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	if s.Not != nil {
		// Only the false schema: {"not":{}} with nothing else that validates.
		if !reflect.ValueOf(*s.Not).IsZero() || s.Type != "" || s.Types != nil || s.Enum != nil ||
			s.Const != nil || s.Properties != nil || s.Required != nil || s.AdditionalProperties != nil ||
			s.Items != nil || s.Minimum != nil || s.Maximum != nil || s.ExclusiveMinimum != nil ||
			s.ExclusiveMaximum != nil || s.MinLength != nil || s.MaxLength != nil || s.Pattern != "" ||
			s.MinItems != nil || s.MaxItems != nil {
			return nil, false
		}
		fs.never = true
		return fs, true
	}
	if s.Type != "" {
		b, ok := fastTypeBits(s.Type)
		if !ok {
			return nil, false
		}
		fs.types = b
	}
	if s.Types != nil {
		if len(s.Types) == 0 {
			return nil, false
		}
		for _, name := range s.Types {
			b, ok := fastTypeBits(name)
			if !ok {
				return nil, false
			}
			fs.types |= b
		}
	}
	if s.Enum != nil {
		fs.hasEnum = true
		for _, e := range s.Enum {
			sc, ok := fastScalarOf(e)
			if !ok {
				return nil, false
			}
			fs.enum = append(fs.enum, sc)
		}
	}
	if s.Const != nil {
		sc, ok := fastScalarOf(*s.Const)
		if !ok {
			return nil, false
		}
		fs.konst = &sc
	}
	for _, n := range []struct {
		p   *float64
		bit uint8
		dst *float64
	}{{s.Minimum, fastMin, &fs.min}, {s.Maximum, fastMax, &fs.max}, {s.ExclusiveMinimum, fastXMin, &fs.xmin}, {s.ExclusiveMaximum, fastXMax, &fs.xmax}} {
		if n.p != nil {
			if math.IsNaN(*n.p) || math.IsInf(*n.p, 0) {
				return nil, false
			}
			fs.numChecks |= n.bit
			*n.dst = *n.p
		}
	}
	if fs.hasEnum || fs.konst != nil {
		fs.strChecks = true // a string instance must be compared, whatever the values' types
	}
	if s.MinLength != nil {
		fs.minLen, fs.strChecks = *s.MinLength, true
	}
	if s.MaxLength != nil {
		fs.maxLen, fs.strChecks = *s.MaxLength, true
	}
	if s.Pattern != "" {
		re, err := regexp.Compile(s.Pattern) // as jsonschema-go compiles it
		if err != nil {
			return nil, false
		}
		fs.pattern, fs.strChecks = re, true
	}
	if s.MinItems != nil {
		fs.minItems = *s.MinItems
	}
	if s.MaxItems != nil {
		fs.maxItems = *s.MaxItems
	}
	if s.Items != nil {
		it, ok := compileFastNode(s.Items, false)
		if !ok {
			return nil, false
		}
		fs.items = it
	}
	if s.AdditionalProperties != nil {
		ap, ok := compileFastNode(s.AdditionalProperties, false)
		if !ok {
			return nil, false
		}
		if ap.never {
			fs.noExtra = true
		} else if !ap.isAny() {
			fs.additional = ap
		}
	}
	// Required properties first (their presence is checked by index), then the others.
	required := map[string]bool{}
	for _, name := range s.Required {
		if !required[name] {
			required[name] = true
			fs.props = append(fs.props, fastProp{name: name})
		}
	}
	fs.nRequired = len(fs.props)
	for name := range s.Properties {
		if !required[name] {
			fs.props = append(fs.props, fastProp{name: name})
		}
	}
	if len(fs.props) > fastMaxProps {
		return nil, false
	}
	for i := range fs.props {
		p := &fs.props[i]
		sub, in := s.Properties[p.name]
		p.inProps = in
		if in {
			c, ok := compileFastNode(sub, false)
			if !ok {
				return nil, false
			}
			if !c.isAny() {
				p.schema = c
			}
		}
	}
	return fs, true
}

// isAny reports whether fs accepts every value.
func (fs *fastSchema) isAny() bool {
	return !fs.never && fs.types == 0 && !fs.hasEnum && fs.konst == nil && fs.numChecks == 0 &&
		!fs.strChecks && fs.props == nil && fs.additional == nil && !fs.noExtra && fs.items == nil &&
		fs.minItems < 0 && fs.maxItems < 0
}

func fastTypeBits(name string) (uint8, bool) {
	switch name {
	case "null":
		return fastTNull, true
	case "boolean":
		return fastTBool, true
	case "integer":
		return fastTInt, true
	case "number":
		return fastTInt | fastTNum, true
	case "string":
		return fastTStr, true
	case "array":
		return fastTArr, true
	case "object":
		return fastTObj, true
	}
	return 0, false
}

// fastScalarOf converts an enum/const value as encoding/json decoded it from the schema.
func fastScalarOf(v any) (fastScalar, bool) {
	switch x := v.(type) {
	case nil:
		return fastScalar{t: fastTNull}, true
	case bool:
		return fastScalar{t: fastTBool, yes: x}, true
	case string:
		return fastScalar{t: fastTStr, s: x}, true
	case float64:
		return fastScalar{t: fastTInt | fastTNum, f: x}, true
	}
	return fastScalar{}, false
}

// accepts reports whether the raw arguments object certainly satisfies the schema (see
// fastSchema). Absent or null arguments are checked as {}, as validateArgs does.
func (fs *fastSchema) accepts(args []byte) bool {
	if len(args) == 0 || string(args) == "null" {
		args = emptyArgsObject
	}
	i := fastWS(args, 0)
	if i >= len(args) || args[i] != '{' {
		return false
	}
	end, ok := fs.value(args, i, 0)
	return ok && fastWS(args, end) == len(args)
}

var emptyArgsObject = []byte("{}")

// acceptsValue is accepts for a tool's output: any JSON value, not only an object.
func (fs *fastSchema) acceptsValue(b []byte) bool {
	i := fastWS(b, 0)
	if i >= len(b) {
		return false
	}
	end, ok := fs.value(b, i, 0)
	return ok && fastWS(b, end) == len(b)
}

// value checks the JSON value at b[i] (not whitespace) against fs (nil: any value, still
// checked for syntax and for what sonic would refuse). It returns the index after the value.
func (fs *fastSchema) value(b []byte, i, depth int) (int, bool) {
	if depth > fastMaxDepth || i >= len(b) {
		return i, false
	}
	if fs != nil && fs.never {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, ok := fastString(b, i)
		if !ok {
			return end, false
		}
		if fs == nil {
			return end, true
		}
		if fs.types != 0 && fs.types&fastTStr == 0 {
			return end, false
		}
		if !fs.strChecks {
			return end, true
		}
		var s string
		if esc {
			// Escapes: let sonic decode the string, as the full path would.
			if codec.Unmarshal(b[i:end], &s) != nil {
				return end, false
			}
		} else {
			s = b2str(b[i+1 : end-1])
		}
		return end, fs.checkString(s)
	case c == '{':
		return fs.object(b, i, depth)
	case c == '[':
		return fs.array(b, i, depth)
	case c == 't' || c == 'f' || c == 'n':
		lit, t := "null", fastTNull
		switch c {
		case 't':
			lit, t = "true", fastTBool
		case 'f':
			lit, t = "false", fastTBool
		}
		if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
			return i, false
		}
		end := i + len(lit)
		if fs == nil {
			return end, true
		}
		if fs.types != 0 && fs.types&t == 0 {
			return end, false
		}
		sc := fastScalar{t: t, yes: c == 't'}
		return end, fs.checkScalar(&sc)
	default:
		end, ok := codec.NumberEnd(b, i)
		if !ok {
			return end, false
		}
		num := b[i:end]
		// A plain integer of under 300 digits is integral and within float64's range.
		if end-i < 300 && isPlainInt(num) && (fs == nil ||
			(fs.types == 0 || fs.types&fastTInt != 0) && fs.numChecks == 0 && !fs.hasEnum && fs.konst == nil) {
			return end, true
		}
		f, err := strconv.ParseFloat(b2str(num), 64)
		if err != nil {
			return end, false // out of float64's range: sonic refuses it
		}
		if fs == nil {
			return end, true
		}
		t := fastTNum
		if _, frac := math.Modf(f); frac == 0 {
			t = fastTInt
		}
		if fs.types != 0 && fs.types&t == 0 {
			return end, false
		}
		if !fs.checkNumber(f) {
			return end, false
		}
		sc := fastScalar{t: fastTInt | fastTNum, f: f}
		return end, fs.checkScalar(&sc)
	}
}

// checkScalar applies enum and const to a scalar instance.
func (fs *fastSchema) checkScalar(v *fastScalar) bool {
	if fs.hasEnum {
		found := false
		for k := range fs.enum {
			if fs.enum[k].equal(v) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return fs.konst == nil || fs.konst.equal(v)
}

func (a *fastScalar) equal(b *fastScalar) bool {
	if a.t != b.t {
		return false
	}
	switch a.t {
	case fastTStr:
		return a.s == b.s
	case fastTBool:
		return a.yes == b.yes
	case fastTNull:
		return true
	}
	return a.f == b.f
}

func (fs *fastSchema) checkNumber(f float64) bool {
	if fs.numChecks == 0 {
		return true
	}
	return (fs.numChecks&fastMin == 0 || f >= fs.min) &&
		(fs.numChecks&fastMax == 0 || f <= fs.max) &&
		(fs.numChecks&fastXMin == 0 || f > fs.xmin) &&
		(fs.numChecks&fastXMax == 0 || f < fs.xmax)
}

func (fs *fastSchema) checkString(s string) bool {
	if fs.minLen >= 0 || fs.maxLen >= 0 {
		n := utf8.RuneCountInString(s)
		if fs.minLen >= 0 && n < fs.minLen || fs.maxLen >= 0 && n > fs.maxLen {
			return false
		}
	}
	if fs.pattern != nil && !fs.pattern.MatchString(s) {
		return false
	}
	if fs.hasEnum || fs.konst != nil {
		v := fastScalar{t: fastTStr, s: s}
		return fs.checkScalar(&v)
	}
	return true
}

// object checks the object at b[i] == '{'.
func (fs *fastSchema) object(b []byte, i, depth int) (int, bool) {
	if fs != nil && (fs.types != 0 && fs.types&fastTObj == 0 || fs.hasEnum || fs.konst != nil) {
		return i, false // enum and const hold scalars only: no object equals them
	}
	var seen uint64
	i = fastWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			kend, esc, ok := fastString(b, i)
			if !ok || esc { // an escaped key may spell a property name: the full path decides
				return kend, false
			}
			key := b[i+1 : kend-1]
			i = fastWS(b, kend)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = fastWS(b, i+1)
			var sub *fastSchema
			if fs != nil {
				k := fs.prop(key)
				if k >= 0 {
					if seen&(1<<k) != 0 {
						return i, false // duplicate key: the last one wins in the map
					}
					seen |= 1 << k
					p := &fs.props[k]
					sub = p.schema
					if !p.inProps { // only in required: additionalProperties applies
						if fs.noExtra {
							return i, false
						}
						sub = fs.additional
					}
				} else {
					if fs.noExtra {
						return i, false
					}
					sub = fs.additional
				}
			}
			var ok2 bool
			if i, ok2 = sub.value(b, i, depth+1); !ok2 {
				return i, false
			}
			i = fastWS(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return i, false
			}
			i = fastWS(b, i+1)
		}
	}
	if fs != nil && fs.nRequired > 0 {
		want := uint64(1)<<fs.nRequired - 1
		if seen&want != want {
			return i, false
		}
	}
	return i, true
}

// prop returns the index of the property named key, or -1.
func (fs *fastSchema) prop(key []byte) int {
	for k := range fs.props {
		if fs.props[k].name == b2str(key) {
			return k
		}
	}
	return -1
}

// array checks the array at b[i] == '['.
func (fs *fastSchema) array(b []byte, i, depth int) (int, bool) {
	var items *fastSchema
	if fs != nil {
		if fs.types != 0 && fs.types&fastTArr == 0 || fs.hasEnum || fs.konst != nil {
			return i, false
		}
		items = fs.items
	}
	n := 0
	i = fastWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			var ok bool
			if i, ok = items.value(b, i, depth+1); !ok {
				return i, false
			}
			n++
			i = fastWS(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return i, false
			}
			i = fastWS(b, i+1)
		}
	}
	if fs != nil && (fs.minItems >= 0 && n < fs.minItems || fs.maxItems >= 0 && n > fs.maxItems) {
		return i, false
	}
	return i, true
}

// fastString scans the string at b[i] == '"' strictly (escapes, control characters,
// UTF-8) and returns the index after it and whether it holds escapes. A \u escape of a
// surrogate (paired or not) is refused, leaving its decoding to sonic on the full path.
func fastString(b []byte, i int) (end int, esc, ok bool) {
	j := i + 1
	ascii := true
	for j < len(b) {
		for j+8 <= len(b) && codec.Plain8(binary.LittleEndian.Uint64(b[j:])) {
			j += 8
		}
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return j, esc, false
			}
			return j + 1, esc, true
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return j, esc, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) {
					return j, esc, false
				}
				r := 0
				for _, h := range b[j+2 : j+6] {
					d := codec.Unhex(h)
					if d < 0 {
						return j, esc, false
					}
					r = r<<4 | d
				}
				if 0xD800 <= r && r <= 0xDFFF {
					return j, esc, false
				}
				j += 6
			default:
				return j, esc, false
			}
		case c < 0x20:
			return j, esc, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			j++
		}
	}
	return j, esc, false
}

// isPlainInt reports whether the scanned number has no fraction and no exponent.
func isPlainInt(num []byte) bool {
	for _, c := range num {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

func fastWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// b2str views b as a string without copying; only for comparisons and parsing that do
// not keep the string.
func b2str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
