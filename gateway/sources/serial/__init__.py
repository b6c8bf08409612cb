"""RS-485 meters: DL/T 645-2007 framing, Modbus RTU through pymodbus, one master per bus."""
