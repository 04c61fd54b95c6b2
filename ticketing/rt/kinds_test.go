package rt

// The tests that parse whole configs sit on the embedded default, whose
// checks and file backend need their kinds registered.
import (
	_ "github.com/l2agent/l2agent/checks/all"
	_ "github.com/l2agent/l2agent/ticketing/file"
)
