# Turns the ledger's Lua sources into C byte arrays (NUL-terminated), so the scripts ship
# inside the binary and a change to a .lua file rebuilds it.
#   cmake -DOUT=<file.c> -DSRC_DIR=<lua dir> -DNAMES="prelude;epilogue;..." -P embed.cmake
set(body "/* Generated from the Lua sources in services/ledger/lua by embed.cmake; do not edit. */\n")
string(APPEND body "#include \"scripts.h\"\n\n")
foreach(name ${NAMES})
  file(READ "${SRC_DIR}/${name}.lua" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    " hex "${hex}")
  string(APPEND body "const char ledger_lua_${name}[] = {\n    ${hex}0x00};\n\n")
endforeach()
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
