# cmdwire_protobuf_generate(TARGET tgt PROTOS a.proto ... [IMPORT_DIRS dir ...] [OUT_DIR dir])
#
# Runs protoc with the C++ generator and protoc-gen-cmdwire on each .proto: a/b.proto (its path
# relative to the import dir that holds it) gives OUT_DIR/a/b.pb.h, a/b.pb.cc and a/b.cmdwire.h.
# The .pb.cc files are compiled into `tgt`, and OUT_DIR is added to its include path (PUBLIC),
# so `#include "a/b.cmdwire.h"` works. `tgt` must link cmdwire::cmdwire (or cmdwire::core),
# which brings protobuf::libprotobuf.
#   PROTOS       relative to the current source dir, or absolute
#   IMPORT_DIRS  protoc's -I dirs (relative to the current source dir); each .proto must be in
#                one. Default: each .proto's own dir, so a/b.proto gives OUT_DIR/b.pb.h
#   OUT_DIR      default: the current binary dir
# Uses the target cmdwire::protoc-gen-cmdwire: built in cmdwire's own tree, imported from an
# installed cmdwire by find_package(cmdwire).
function(cmdwire_protobuf_generate)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "TARGET;OUT_DIR" "PROTOS;IMPORT_DIRS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "cmdwire_protobuf_generate: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TARGET OR NOT TARGET "${arg_TARGET}")
    message(FATAL_ERROR "cmdwire_protobuf_generate: TARGET must name an existing target, got '${arg_TARGET}'")
  endif()
  if(NOT arg_PROTOS)
    message(FATAL_ERROR "cmdwire_protobuf_generate: no PROTOS given for ${arg_TARGET}")
  endif()
  if(NOT TARGET cmdwire::protoc-gen-cmdwire)
    message(FATAL_ERROR "cmdwire_protobuf_generate: this cmdwire has no protoc-gen-cmdwire "
      "(configure cmdwire with -DCMDWIRE_PROTOC_PLUGIN=ON)")
  endif()
  # FindProtobuf's imported protobuf::protoc is seen only below the directory that found it
  # (not by a project that pulled cmdwire in with add_subdirectory); its cache entry everywhere.
  if(TARGET protobuf::protoc)
    set(protoc protobuf::protoc)
  elseif(Protobuf_PROTOC_EXECUTABLE)
    set(protoc "${Protobuf_PROTOC_EXECUTABLE}")
  else()
    message(FATAL_ERROR "cmdwire_protobuf_generate: protoc not found (Debian: protobuf-compiler)")
  endif()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}")
  if(arg_OUT_DIR)
    get_filename_component(out_dir "${arg_OUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  set(import_dirs "")
  foreach(dir IN LISTS arg_IMPORT_DIRS)
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND import_dirs "${dir}")
  endforeach()

  foreach(proto IN LISTS arg_PROTOS)
    get_filename_component(abs "${proto}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    set(dirs ${import_dirs})
    if(NOT dirs)
      get_filename_component(dirs "${abs}" DIRECTORY)
    endif()
    # protoc names its outputs after the path relative to the first import dir holding the file.
    set(rel "")
    foreach(dir IN LISTS dirs)
      cmake_path(IS_PREFIX dir "${abs}" NORMALIZE inside)
      if(inside)
        file(RELATIVE_PATH rel "${dir}" "${abs}")
        break()
      endif()
    endforeach()
    if(NOT rel)
      message(FATAL_ERROR "cmdwire_protobuf_generate: ${proto} is in none of IMPORT_DIRS (${dirs})")
    endif()
    if(NOT rel MATCHES "\\.proto$")
      message(FATAL_ERROR "cmdwire_protobuf_generate: ${proto} does not end in .proto")
    endif()
    string(REGEX REPLACE "\\.proto$" "" base "${rel}")
    # In the order protoc lists them in the depfile: Ninja wants its first target to be the
    # first output, or it treats the outputs as dirty on every build.
    set(outputs "${out_dir}/${base}.cmdwire.h" "${out_dir}/${base}.pb.cc" "${out_dir}/${base}.pb.h")
    list(TRANSFORM dirs PREPEND "-I" OUTPUT_VARIABLE include_flags)
    # protoc refuses an OUT_DIR that does not exist ("OUT_DIR/: No such file or directory"), and
    # only Ninja makes the folders of a command's outputs before running it: with Unix Makefiles
    # (the default generator) the first build failed. So the outputs' folder (OUT_DIR/a for
    # a/b.proto) is made here, whatever the generator, and again by the command itself, in case
    # it was deleted after configuring.
    get_filename_component(gen_dir "${out_dir}/${base}" DIRECTORY)
    file(MAKE_DIRECTORY "${gen_dir}")
    # The depfile lists the imported .proto files, so editing one regenerates this one.
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${gen_dir}"
      COMMAND ${protoc}
        "--plugin=protoc-gen-cmdwire=$<TARGET_FILE:cmdwire::protoc-gen-cmdwire>"
        "--cpp_out=${out_dir}" "--cmdwire_out=${out_dir}"
        "--dependency_out=${out_dir}/${base}.proto.d" ${include_flags} "${abs}"
      DEPENDS "${abs}" ${protoc} cmdwire::protoc-gen-cmdwire
      DEPFILE "${out_dir}/${base}.proto.d"
      COMMENT "protoc + protoc-gen-cmdwire: ${rel}"
      VERBATIM)
    target_sources(${arg_TARGET} PRIVATE ${outputs})
    # protoc gives every .pb.cc the same file-scope names (schemas, file_default_instances):
    # two in one unity batch would clash.
    set_source_files_properties("${out_dir}/${base}.pb.cc" PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
  endforeach()
  target_include_directories(${arg_TARGET} PUBLIC "$<BUILD_INTERFACE:${out_dir}>")
endfunction()
