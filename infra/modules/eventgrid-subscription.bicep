// The subscription that turns BlobCreated events of the export containers into messages of the
// relay's queue. Deployed at the system topic's resource group.

targetScope = 'resourceGroup'

param topicName string
param subscriptionName string

@description('Container name prefix of the export (RELAY_CONTAINER_PREFIX).')
param containerPrefix string

@description('Resource id of the relay storage account that holds the queue and the dead-letter container.')
param queueAccountId string

param queueName string
param deadLetterContainerName string

@description('How long a message waits in the queue before it expires, in seconds (-1: never). The Tail sweep finds blobs whose message was lost, so a week is plenty.')
param queueMessageTimeToLiveInSeconds int = 604800

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: subscriptionName
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      // Created fires once per hourly blob (append blobs fire on create, not on AppendBlock);
      // the Tail sweep finds the appended rows.
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${containerPrefix}'
    }
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: queueAccountId
          queueName: queueName
          queueMessageTimeToLiveInSeconds: queueMessageTimeToLiveInSeconds
        }
      }
    }
    // Keep trying for a day (exponential back-off), then dead-letter.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: queueAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output name string = blobCreated.name
