package schemafiles

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  string // versions in order, or the error's text
	}{
		{"in order", fstest.MapFS{"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A")}, "1:A 2:B"},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C")}, "want version 2"},
		{"bad name", fstest.MapFS{"migrations/first.sql": file("A")}, "name must be NNNN_name.sql"},
		{"none", fstest.MapFS{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Load(tc.files)
			var got []string
			for _, m := range ms {
				got = append(got, strings.TrimLeft(strings.SplitN(m.Name, "_", 2)[0], "0")+":"+m.SQL)
			}
			s := strings.Join(got, " ")
			if err != nil {
				s = err.Error()
			}
			if !strings.Contains(s, tc.want) || (tc.want == "" && s != "") {
				t.Errorf("Load: got %q, want %q", s, tc.want)
			}
		})
	}
}
