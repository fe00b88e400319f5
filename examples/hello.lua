print("hello from Lua " .. _VERSION)
