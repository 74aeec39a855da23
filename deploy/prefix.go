package deploy

import (
	"bytes"
	"io"
	"sync"
)

// writeMu serialises writes of several followers to one writer.
var writeMu sync.Mutex

// prefixWriter writes each complete line with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		writeMu.Lock()
		_, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1]))
		writeMu.Unlock()
		if err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
