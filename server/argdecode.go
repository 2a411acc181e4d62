package server

import (
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"github.com/erlmcp/erlmcp-go/codec"
)

// argDecoder decodes a typed tool's arguments object straight into its input struct, for
// flat structs of string, bool, integer and float64 fields named by json tags. It takes
// only the plain shape — an object whose keys each name a field exactly, once, with a
// value of the field's JSON type (strings without escapes, integers without fraction or
// exponent, in range) — and leaves everything else to sonic, which then decodes or
// refuses as it always did. TestArgDecoderDifferential and FuzzArgDecoder hold it to
// sonic's results. It saves sonic's decoder allocation, the heap copy of the input and
// the reflective walk on every typed tools/call.
type argDecoder struct {
	fields []argField
}

// argField is one decodable struct field.
type argField struct {
	name string
	off  uintptr
	kind reflect.Kind
}

// newArgDecoder returns a decoder for t, or nil when t is outside the plain shape.
func newArgDecoder(t reflect.Type) *argDecoder {
	if t.Kind() != reflect.Struct || t.NumField() > fastMaxProps {
		return nil
	}
	d := &argDecoder{}
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil // embedded structs promote fields: left to sonic
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",string,") {
			return nil
		}
		if name == "" {
			name = f.Name
		}
		if seen[name] {
			return nil // encoding/json drops clashing names
		}
		seen[name] = true
		switch f.Type.Kind() {
		case reflect.String, reflect.Bool, reflect.Float64,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return nil
		}
		if f.Type.PkgPath() != "" {
			return nil // a named type may unmarshal itself (json.Unmarshaler)
		}
		d.fields = append(d.fields, argField{name: name, off: f.Offset, kind: f.Type.Kind()})
	}
	return d
}

// decode fills the struct at dst from the arguments object b, or returns false (dst may be
// partly written) for sonic to decode into a fresh value.
func (d *argDecoder) decode(b []byte, dst unsafe.Pointer) bool {
	i := fastWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	var seen uint64
	end, ok := fastMembers(b, i, func(key string, j int) (int, bool) {
		k := d.field(key)
		if k < 0 || seen&(1<<k) != 0 {
			return j, false
		}
		seen |= 1 << k
		return d.fields[k].set(b, j, dst)
	})
	return ok && fastWS(b, end) == len(b)
}

func (d *argDecoder) field(key string) int {
	for k := range d.fields {
		if d.fields[k].name == key {
			return k
		}
	}
	return -1
}

// set decodes the value at b[i] into the field and returns the index after it.
func (f *argField) set(b []byte, i int, dst unsafe.Pointer) (int, bool) {
	p := unsafe.Add(dst, f.off)
	switch f.kind {
	case reflect.String:
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		end, esc, ok := fastString(b, i)
		if !ok || esc {
			return end, false
		}
		*(*string)(p) = string(b[i+1 : end-1])
		return end, true
	case reflect.Bool:
		switch {
		case len(b)-i >= 4 && string(b[i:i+4]) == "true":
			*(*bool)(p) = true
			return i + 4, true
		case len(b)-i >= 5 && string(b[i:i+5]) == "false":
			*(*bool)(p) = false
			return i + 5, true
		}
		return i, false
	}
	end, ok := codec.NumberEnd(b, i)
	if !ok || end == i {
		return end, false
	}
	num := b2str(b[i:end])
	switch f.kind {
	case reflect.Float64:
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return end, false
		}
		*(*float64)(p) = v
		return end, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(num, 10, f.bits())
		if err != nil {
			return end, false
		}
		switch f.kind {
		case reflect.Int:
			*(*int)(p) = int(v)
		case reflect.Int8:
			*(*int8)(p) = int8(v)
		case reflect.Int16:
			*(*int16)(p) = int16(v)
		case reflect.Int32:
			*(*int32)(p) = int32(v)
		default:
			*(*int64)(p) = v
		}
		return end, true
	default: // unsigned
		v, err := strconv.ParseUint(num, 10, f.bits())
		if err != nil {
			return end, false
		}
		switch f.kind {
		case reflect.Uint:
			*(*uint)(p) = uint(v)
		case reflect.Uint8:
			*(*uint8)(p) = uint8(v)
		case reflect.Uint16:
			*(*uint16)(p) = uint16(v)
		case reflect.Uint32:
			*(*uint32)(p) = uint32(v)
		default:
			*(*uint64)(p) = v
		}
		return end, true
	}
}

// bits is the size of the field's integer kind.
func (f *argField) bits() int {
	switch f.kind {
	case reflect.Int8, reflect.Uint8:
		return 8
	case reflect.Int16, reflect.Uint16:
		return 16
	case reflect.Int32, reflect.Uint32:
		return 32
	case reflect.Int64, reflect.Uint64:
		return 64
	}
	return strconv.IntSize
}
