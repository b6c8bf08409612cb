"""Serial meter protocols shared by the gateway (master) and the simulator (slaves):
DL/T 645-2007 framing written here, Modbus RTU through pymodbus."""
