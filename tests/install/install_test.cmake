# cmake -DBUILD_DIR=… -DPREFIX=… -P install_test.cmake
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc}): ${err}")
endif()
foreach(f bin/switchboard bin/switchboard-cli bin/switchboard-bench etc/switchboard/switchboard.conf
          lib/systemd/system/switchboard.service include/switchboard/client.h include/switchboard/protocol.h
          lib/libswitchboard_client.a share/doc/switchboard/LICENSE share/bash-completion/completions/switchboard-cli)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
# The installed broker validates the installed config file, and names its version.
execute_process(COMMAND ${PREFIX}/bin/switchboard --check-config ${PREFIX}/etc/switchboard/switchboard.conf
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out STREQUAL "switchboard: configuration file ${PREFIX}/etc/switchboard/switchboard.conf is valid\n")
  message(FATAL_ERROR "installed config does not check (${rc}): ${out}${err}")
endif()
execute_process(COMMAND ${PREFIX}/bin/switchboard --version RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^switchboard [0-9]+\\.[0-9]+\\.[0-9]+ \\(commit ")
  message(FATAL_ERROR "installed --version: ${rc} ${out}")
endif()
file(READ ${PREFIX}/lib/systemd/system/switchboard.service unit)
foreach(line "ExecStart=.*/bin/switchboard --config .*/etc/switchboard/switchboard.conf" "ExecReload=/bin/kill -HUP \\$MAINPID"
             "RestartPreventExitStatus=2")
  if(NOT unit MATCHES "${line}")
    message(FATAL_ERROR "systemd unit lacks ${line}:\n${unit}")
  endif()
endforeach()
file(REMOVE_RECURSE ${PREFIX})
