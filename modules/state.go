package modules

import (
	"encoding/json"
	"fmt"
)

// An Undoer's state is what its Undo needs of its step: declared once per
// module as a struct with json tags, put into Result.Data with asData and
// read back with loadState. Both go through the JSON form the journal
// keeps, so Undo reads the same values in the run that made the change and
// after --resume (the runner also hands Undo a step's Data in that form).
// A module may add keys of its own to the Data for register; loadState
// ignores them.

// loadState reads a step's undo state back from its result's Data.
func loadState[T any](r Result) (T, error) {
	var s T
	b, err := json.Marshal(r.Data)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return s, fmt.Errorf("read the step's undo state: %w", err)
	}
	return s, nil
}
