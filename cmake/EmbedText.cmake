# cmake -DIN=file -DOUT=file.cc -DSYMBOL=name -P EmbedText.cmake
# Writes `extern const char* const roilens_embedded_<SYMBOL>` holding IN's text as a raw literal.
file(READ "${IN}" content)
string(FIND "${content}" ")roilens_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE "${OUT}" "// Generated from ${IN}; do not edit.\nextern const char* const roilens_embedded_${SYMBOL};\nconst char* const roilens_embedded_${SYMBOL} = R\"roilens_embed(${content})roilens_embed\";\n")
