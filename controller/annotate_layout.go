package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// setAnnotation sets the converge annotation at path (annotationPath's)
// to token, keeping the file's layout. sjson replaces an existing value in
// place, but a new key it appends compactly (`,"annotations":{...}`), which
// leaves a hand-indented file with one odd line. So a new key is inserted
// here as the object's last member, indented and spaced like the members
// already there.
func setAnnotation(data []byte, path, token string) ([]byte, error) {
	if gjson.GetBytes(data, path).Exists() {
		return sjson.SetBytes(data, path, token)
	}
	key := gjson.Escape(api.ConvergeAnnotation)
	guestPath := strings.TrimSuffix(path, ".annotations."+key)
	tok, _ := json.Marshal(token)
	name, _ := json.Marshal(api.ConvergeAnnotation)
	member := func(l layout) string { return string(name) + l.sep + string(tok) }

	var out []byte
	var err error
	if ann := gjson.GetBytes(data, guestPath+".annotations"); ann.Exists() {
		if !ann.IsObject() {
			return nil, fmt.Errorf("annotations is not an object")
		}
		out, err = insertMember(data, ann, member)
	} else {
		out, err = insertMember(data, gjson.GetBytes(data, guestPath), newAnnotations(member))
	}
	if errors.Is(err, errNoLayout) {
		// Correct JSON in sjson's compact style beats no annotation.
		return sjson.SetBytes(data, path, token)
	}
	return out, err
}

// errNoLayout: the object was not found where gjson said it is.
var errNoLayout = errors.New("cannot locate the object to annotate")

// newAnnotations writes an annotations object holding one member.
func newAnnotations(member func(layout) string) func(layout) string {
	return func(l layout) string {
		inner := layout{sep: l.sep, gap: l.gap + l.unit, close: l.gap}
		if !l.multiline() {
			inner = l
		}
		return `"annotations"` + l.sep + "{" + inner.gap + member(inner) + inner.closing() + "}"
	}
}

// layout is how an object's members are written: the whitespace before
// each member (gap: a line break and the indentation, or a space, or
// nothing), before the closing brace (close), between a key and its value
// (sep), and one level of indentation (unit).
type layout struct {
	gap, close, sep, unit string
}

func (l layout) multiline() bool { return strings.Contains(l.gap, "\n") }

// closing is the whitespace before the closing brace of an object one
// level deeper, written in this layout.
func (l layout) closing() string {
	if l.multiline() {
		return l.close
	}
	return strings.TrimLeft(l.gap, "\n")
}

// insertMember inserts the member text makes (given the object's layout)
// after the last member of obj, a result read from data.
func insertMember(data []byte, obj gjson.Result, text func(layout) string) ([]byte, error) {
	start := obj.Index
	if !obj.IsObject() || start <= 0 || start+len(obj.Raw) > len(data) || string(data[start:start+len(obj.Raw)]) != obj.Raw {
		return nil, errNoLayout
	}
	raw := obj.Raw
	body := raw[1 : len(raw)-1]
	trimmed := strings.TrimRight(body, " \t\r\n")
	l := layout{sep: ": ", unit: "    "}
	if strings.TrimSpace(body) != "" {
		l.gap = body[:len(body)-len(strings.TrimLeft(body, " \t\r\n"))]
		l.close = body[len(trimmed):]
		l.sep = keySeparator(body[len(l.gap):])
		if u := strings.TrimPrefix(indentOf(l.gap), indentOf(l.close)); u != "" && l.multiline() {
			l.unit = u
		}
	}
	var ins strings.Builder
	if strings.TrimSpace(body) != "" {
		ins.WriteByte(',')
	}
	ins.WriteString(l.gap)
	ins.WriteString(text(l))
	at := start + 1 + len(trimmed)
	out := make([]byte, 0, len(data)+ins.Len())
	out = append(out, data[:at]...)
	out = append(out, ins.String()...)
	out = append(out, data[at:]...)
	if !json.Valid(out) {
		return nil, fmt.Errorf("annotating would break the file's JSON")
	}
	return out, nil
}

// indentOf is the indentation after the last line break of ws.
func indentOf(ws string) string {
	if i := strings.LastIndexByte(ws, '\n'); i >= 0 {
		return ws[i+1:]
	}
	return ""
}

// keySeparator is what comes between the first member's key and its
// value: ": " in most hand-written files, ":" in compact ones.
func keySeparator(members string) string {
	if !strings.HasPrefix(members, `"`) {
		return ": "
	}
	i := 1
	for i < len(members) && members[i] != '"' {
		if members[i] == '\\' {
			i++
		}
		i++
	}
	rest := members[min(i+1, len(members)):]
	colon := strings.IndexByte(rest, ':')
	if colon < 0 {
		return ": "
	}
	after := rest[colon+1:]
	return rest[:colon+1] + after[:len(after)-len(strings.TrimLeft(after, " \t"))]
}
