"""The OCPP 2.0.1 device model: `catalog` says which components and variables a station has
and what each accepts; `model` holds one station's values and answers Get/SetVariables and
reports."""
