//go:build !unix

package proxy

// alive cannot peek on this system; a dead connection shows as an upstream
// error on its first use.
func (uc *upConn) alive() bool { return true }
